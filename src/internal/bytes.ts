/** A Buffer over the same memory as the bytes (no copy): the driver accepts only Buffers for blobs and routing keys. */
export const toBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
