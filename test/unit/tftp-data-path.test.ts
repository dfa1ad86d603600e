// The one reading of a datagram on a transfer's port (main/tftp/data-path.ts), shared by the
// worker's poll loop and the event loop's dgram sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dispatchTransferDatagram, UNKNOWN_TID_ERROR } from '../../main/tftp/data-path.js';
import { decodeTftpPacket, encodeAck, encodeError, TftpErrorCode, TftpOpcode } from '../../main/tftp/packet.js';

function recorder() {
  const calls: unknown[][] = [];
  return {
    calls,
    handleAck: (block: number) => calls.push(['ack', block]),
    handleError: (code: number, message: string) => calls.push(['error', code, message]),
  };
}

test('an ACK from the client reaches the transfer with its block number', () => {
  const t = recorder();
  assert.equal(dispatchTransferDatagram(t, encodeAck(0xbeef), 4, true), 'handled');
  assert.deepEqual(t.calls, [['ack', 0xbeef]]);
});

test('an ERROR from the client reaches the transfer with code and message', () => {
  const t = recorder();
  const error = encodeError(TftpErrorCode.DiskFull, 'no room');
  assert.equal(dispatchTransferDatagram(t, error, error.length, true), 'handled');
  assert.deepEqual(t.calls, [['error', TftpErrorCode.DiskFull, 'no room']]);
});

test('an ERROR without its terminating zero, in a larger receive buffer, stops at the datagram length', () => {
  const t = recorder();
  const buffer = Buffer.alloc(64, 0x41);
  buffer.set([0, TftpOpcode.ERROR, 0, 1], 0);
  assert.equal(dispatchTransferDatagram(t, buffer, 8, true), 'handled');
  assert.deepEqual(t.calls, [['error', 1, 'AAAA']]);
});

test('anything from another address or port is a foreign TID, answered with ERROR 5', () => {
  const t = recorder();
  assert.equal(dispatchTransferDatagram(t, encodeAck(1), 4, false), 'foreign-tid');
  assert.deepEqual(t.calls, []);
  const reply = decodeTftpPacket(UNKNOWN_TID_ERROR);
  assert.equal(reply.opcode, TftpOpcode.ERROR);
  assert.equal(reply.opcode === TftpOpcode.ERROR && reply.code, TftpErrorCode.UnknownTransferId);
});

test('short datagrams and other opcodes from the client are junk', () => {
  const t = recorder();
  assert.equal(dispatchTransferDatagram(t, Buffer.from([0, TftpOpcode.ACK, 0]), 3, true), 'junk');
  assert.equal(dispatchTransferDatagram(t, Buffer.from([0, TftpOpcode.DATA, 0, 1, 9]), 5, true), 'junk');
  assert.equal(dispatchTransferDatagram(t, Buffer.from([1, TftpOpcode.ACK, 0, 1]), 4, true), 'junk');
  assert.deepEqual(t.calls, []);
});
