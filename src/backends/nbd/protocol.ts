// NBD protocol constants (github.com/NetworkBlockDevice/nbd doc/proto.md; nbdkit's
// common/protocol/nbd-protocol.h uses the same names and values).

export const NBDMAGIC = 0x4e42444d41474943n; // "NBDMAGIC"
export const IHAVEOPT = 0x49484156454f5054n; // "IHAVEOPT": newstyle negotiation
export const NBD_OLD_VERSION = 0x00420281861253n; // oldstyle negotiation (unsupported here)
export const NBD_REP_MAGIC = 0x0003e889045565a9n; // option reply magic

// Handshake flags (server) and client flags.
export const NBD_FLAG_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_NO_ZEROES = 1 << 1;
export const NBD_FLAG_C_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_C_NO_ZEROES = 1 << 1;

// Options.
export const NBD_OPT_EXPORT_NAME = 1;
export const NBD_OPT_ABORT = 2;
export const NBD_OPT_GO = 7;

// Option reply types; errors have bit 31 set.
export const NBD_REP_ACK = 1;
export const NBD_REP_INFO = 3;
export const NBD_REP_FLAG_ERROR = 0x8000_0000;
export const NBD_REP_ERR_UNSUP = NBD_REP_FLAG_ERROR | 1;

export const REP_ERROR_NAMES: Record<number, string> = {
  [NBD_REP_FLAG_ERROR | 1]: 'NBD_REP_ERR_UNSUP',
  [NBD_REP_FLAG_ERROR | 2]: 'NBD_REP_ERR_POLICY',
  [NBD_REP_FLAG_ERROR | 3]: 'NBD_REP_ERR_INVALID',
  [NBD_REP_FLAG_ERROR | 4]: 'NBD_REP_ERR_PLATFORM',
  [NBD_REP_FLAG_ERROR | 5]: 'NBD_REP_ERR_TLS_REQD',
  [NBD_REP_FLAG_ERROR | 6]: 'NBD_REP_ERR_UNKNOWN (no such export)',
  [NBD_REP_FLAG_ERROR | 7]: 'NBD_REP_ERR_SHUTDOWN',
  [NBD_REP_FLAG_ERROR | 8]: 'NBD_REP_ERR_BLOCK_SIZE_REQD',
  [NBD_REP_FLAG_ERROR | 9]: 'NBD_REP_ERR_TOO_BIG',
};

// NBD_OPT_GO information items.
export const NBD_INFO_EXPORT = 0; // u64 size, u16 transmission flags
export const NBD_INFO_BLOCK_SIZE = 3; // u32 minimum, preferred, maximum

// Transmission flags.
export const NBD_FLAG_HAS_FLAGS = 1 << 0;
export const NBD_FLAG_READ_ONLY = 1 << 1;
export const NBD_FLAG_SEND_FLUSH = 1 << 2;
export const NBD_FLAG_SEND_FUA = 1 << 3;
export const NBD_FLAG_SEND_TRIM = 1 << 5;

// Transmission requests and simple replies.
export const NBD_REQUEST_MAGIC = 0x25609513;
export const NBD_SIMPLE_REPLY_MAGIC = 0x67446698;
export const NBD_STRUCTURED_REPLY_MAGIC = 0x668e33ef;
export const NBD_CMD_READ = 0;
export const NBD_CMD_WRITE = 1;
export const NBD_CMD_DISC = 2;
export const NBD_CMD_FLUSH = 3;
export const NBD_CMD_TRIM = 4;
export const NBD_CMD_FLAG_FUA = 1 << 0;

export const NBD_ERROR_NAMES: Record<number, string> = {
  1: 'EPERM',
  5: 'EIO',
  12: 'ENOMEM',
  22: 'EINVAL',
  28: 'ENOSPC',
  75: 'EOVERFLOW',
  95: 'ENOTSUP',
  108: 'ESHUTDOWN',
};

/** Largest payload we put in one request when the server states no maximum (proto.md: 32 MiB is safe). */
export const NBD_DEFAULT_MAX_PAYLOAD = 32 * 1024 * 1024;

export const CMD_NAMES = ['READ', 'WRITE', 'DISC', 'FLUSH', 'TRIM'];
