// What starting a guest gives back: a handle to stop it and the outcome it ends with.

export interface GuestOutcome {
  guest: string;
  how: 'scripted' | 'user' | 'kvm' | 'qemu';
  ok: boolean;
  detail: string;
}

export interface LaunchedGuest {
  name: string;
  done: Promise<GuestOutcome>;
  stop(): void;
}
