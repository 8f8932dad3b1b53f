// The wire edge: what a network backend (tap, udp, switch, a MUX's classifier) implements
// for the card. The card calls send() for each frame it transmits (no FCS, 1..1518 bytes) and
// installs its receiver once; the backend calls the receiver for each frame from the wire.
// Both run on the event loop's thread, so a frame never arrives in the middle of a register
// access. The receiver's answer says what the card did with the frame.

export type RxResult =
  | 'stored' // written into the receive ring (PRX set)
  | 'filtered' // not for this card (RCR, PAR, MAR)
  | 'stopped' // card stopped (CR.STP): dropped
  | 'full' // less than 1518 bytes free in the ring: dropped, CNTR2 counted
  | 'invalid' // PSTART/PSTOP do not describe a ring in buffer memory: dropped
  | 'monitor' // monitor mode: counted in CNTR2, not stored
  | 'oversize' // more than 1518 bytes, or shorter than a destination address: dropped
  | 'queued'; // handed to a card in another process (QEMU's ne2k_pci): its registers tell

export type FrameReceiver = (frame: Uint8Array) => RxResult;

export interface NicWire {
  /** A frame the card transmits; the backend must not keep `frame` past the call without copying. */
  send(frame: Uint8Array): void;
  /** The card's receiver (null when the card is closed). Called once when the card is built. */
  attach(receiver: FrameReceiver | null): void;
  /** Where the backend reports a failure while it runs (the socket, the TAP bridge). */
  onError?(report: (what: string, err: Error) => void): void;
}

/** A wire to nowhere: transmitted frames are dropped, nothing arrives. Counts what it saw. */
export class NullWire implements NicWire {
  sent = 0;
  send(): void {
    this.sent++;
  }
  attach(): void {}
}

/** A wire for tests and in-process peers: keeps transmitted frames, injects frames on demand. */
export class LoopWire implements NicWire {
  readonly sent: Uint8Array[] = [];
  private receiver: FrameReceiver | null = null;
  send(frame: Uint8Array): void {
    this.sent.push(frame.slice());
  }
  attach(receiver: FrameReceiver | null): void {
    this.receiver = receiver;
  }
  /** Deliver a frame to the card; throws if no card is attached (a test's mistake). */
  inject(frame: Uint8Array): RxResult {
    if (!this.receiver) throw new Error('LoopWire: no card attached');
    return this.receiver(frame);
  }
}
