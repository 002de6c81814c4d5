// ColorRequest and ColorResponse (proto/color.proto) in the protobuf binary
// wire format, written by hand: two tiny proto3 messages need only varints
// and length-delimited strings. Proto3 rules: scalar fields at their default
// (0, "") are not written; unknown fields are skipped when reading; a
// negative int32 is sign-extended to a 10-byte varint.

export type ColorRequest = { row: number; column: number };
export type ColorResponse = { color: string; rate: string; errors: string[] };

const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const FIXED32 = 5;

class Writer {
  readonly bytes: number[] = [];

  varint(value: bigint): void {
    let v = BigInt.asUintN(64, value);
    while (v >= 0x80n) {
      this.bytes.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.bytes.push(Number(v));
  }

  tag(field: number, wireType: number): void {
    this.varint(BigInt((field << 3) | wireType));
  }

  int32(field: number, value: number): void {
    if (value === 0) return;
    this.tag(field, VARINT);
    this.varint(BigInt(value | 0));
  }

  string(field: number, value: string, always = false): void {
    if (value === "" && !always) return;
    const utf8 = Buffer.from(value, "utf8");
    this.tag(field, LENGTH_DELIMITED);
    this.varint(BigInt(utf8.length));
    for (const b of utf8) this.bytes.push(b);
  }

  finish(): Buffer {
    return Buffer.from(this.bytes);
  }
}

class Reader {
  readonly #buf: Uint8Array;
  #pos = 0;

  constructor(buf: Uint8Array) {
    this.#buf = buf;
  }

  get done(): boolean {
    return this.#pos >= this.#buf.length;
  }

  varint(): bigint {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      const b = this.#buf[this.#pos++];
      if (b === undefined) throw new Error("protobuf: truncated varint");
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return BigInt.asUintN(64, result);
    }
    throw new Error("protobuf: varint longer than 10 bytes");
  }

  int32(): number {
    return Number(BigInt.asIntN(32, this.varint()));
  }

  length(): number {
    const n = Number(this.varint());
    if (this.#pos + n > this.#buf.length) throw new Error("protobuf: length beyond the end of the message");
    return n;
  }

  string(): string {
    const n = this.length();
    const s = Buffer.from(this.#buf.buffer, this.#buf.byteOffset + this.#pos, n).toString("utf8");
    this.#pos += n;
    return s;
  }

  skip(wireType: number): void {
    const skipBytes = (n: number) => {
      if (this.#pos + n > this.#buf.length) throw new Error("protobuf: truncated field");
      this.#pos += n;
    };
    if (wireType === VARINT) this.varint();
    else if (wireType === FIXED64) skipBytes(8);
    else if (wireType === LENGTH_DELIMITED) skipBytes(this.length());
    else if (wireType === FIXED32) skipBytes(4);
    else throw new Error(`protobuf: unsupported wire type ${wireType}`);
  }

  /** The next field's number and wire type. */
  tag(): { field: number; wireType: number } {
    const t = Number(this.varint());
    return { field: t >>> 3, wireType: t & 7 };
  }
}

export function encodeColorRequest(m: ColorRequest): Buffer {
  const w = new Writer();
  w.int32(1, m.row);
  w.int32(2, m.column);
  return w.finish();
}

export function decodeColorRequest(buf: Uint8Array): ColorRequest {
  const r = new Reader(buf);
  const m: ColorRequest = { row: 0, column: 0 };
  while (!r.done) {
    const { field, wireType } = r.tag();
    if (field === 1 && wireType === VARINT) m.row = r.int32();
    else if (field === 2 && wireType === VARINT) m.column = r.int32();
    else r.skip(wireType);
  }
  return m;
}

export function encodeColorResponse(m: ColorResponse): Buffer {
  const w = new Writer();
  w.string(1, m.color);
  w.string(2, m.rate);
  for (const e of m.errors) w.string(3, e, true);
  return w.finish();
}

export function decodeColorResponse(buf: Uint8Array): ColorResponse {
  const r = new Reader(buf);
  const m: ColorResponse = { color: "", rate: "", errors: [] };
  while (!r.done) {
    const { field, wireType } = r.tag();
    if (field === 1 && wireType === LENGTH_DELIMITED) m.color = r.string();
    else if (field === 2 && wireType === LENGTH_DELIMITED) m.rate = r.string();
    else if (field === 3 && wireType === LENGTH_DELIMITED) m.errors.push(r.string());
    else r.skip(wireType);
  }
  return m;
}
