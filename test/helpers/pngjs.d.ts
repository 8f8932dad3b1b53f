// The part of pngjs (7.0.0, no types of its own) the report test uses: decoding a PNG to RGBA.
declare module 'pngjs' {
  export const PNG: {
    sync: { read(buffer: Buffer): { width: number; height: number; data: Buffer } };
  };
}
