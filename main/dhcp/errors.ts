// The one error the DHCP codec throws for bytes it cannot make sense of. The socket
// loops catch exactly this class, log it once and keep serving; anything else escaping
// the decoder is a bug.

export class DhcpDecodeError extends Error {
  override readonly name = 'DhcpDecodeError';
  constructor(
    message: string,
    readonly offset?: number,
  ) {
    super(offset === undefined ? message : `${message} (at byte ${offset})`);
  }
}

/** A packet we were asked to build cannot be put on the wire (a value out of range). */
export class DhcpEncodeError extends Error {
  override readonly name = 'DhcpEncodeError';
}
