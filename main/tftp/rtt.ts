// Round-trip time estimate for a TFTP sender that times its own retransmissions.

/** RFC 6298 §2's smoothed RTT and variance; Karn's rule (no samples from retransmissions) is the caller's. */
export class RttEstimator {
  private srtt: number | undefined;
  private rttvar = 0;

  /** Takes one sample (ms) and returns the new retransmission timeout, clamped to [minRto, maxRto]. */
  sample(sample: number, minRto: number, maxRto: number): number {
    const r = Math.max(0, sample);
    if (this.srtt === undefined) {
      this.srtt = r;
      this.rttvar = r / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - r);
      this.srtt = 0.875 * this.srtt + 0.125 * r;
    }
    return Math.min(Math.max(this.srtt + 4 * this.rttvar, minRto), maxRto);
  }
}
