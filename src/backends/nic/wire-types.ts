// The wire edge as the network backends see it: the same shape as the NE2000's NicWire
// (src/devices/ne2k/wire.ts), restated here because backends do not import device models
// (the models import backends). A card's receiver answers what it did with the frame.

export type CardReceiver = (frame: Uint8Array) => unknown;

/** A failure of the wire while it runs (`what`: the operation, in the backend's words). */
export type WireErrorReport = (what: string, err: Error) => void;

export interface NetWire {
  send(frame: Uint8Array): void;
  attach(receiver: CardReceiver | null): void;
  /** Where the wire reports its failures (the card passes its device's log edge). */
  onError?(report: WireErrorReport): void;
}

export type NetWireOpener = (backend: Record<string, unknown>, id: string) => NetWire | Promise<NetWire>;
