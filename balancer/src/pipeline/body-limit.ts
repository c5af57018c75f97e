import { Transform, type TransformCallback } from 'node:stream';

/**
 * BodyLimit passes a request body on until it has passed `max` bytes, then calls exceeded() once
 * and passes nothing more: limits.maxBodyBytes for bodies whose length is not known up front
 * (chunked). A Content-Length above the limit is refused before any byte is read, and Node's
 * parser holds a body to its Content-Length.
 */
export class BodyLimit extends Transform {
  private seen = 0;
  private over = false;

  constructor(
    private readonly max: number,
    private readonly exceeded: () => void,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen <= this.max) {
      done(null, chunk);
      return;
    }
    done();
    if (this.over) return;
    this.over = true;
    this.exceeded();
  }
}
