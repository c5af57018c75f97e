import { parseEvents, getScalarValue, type Event, type ScalarEvent } from 'js-yaml';

export interface Position {
  line: number;
  column: number;
}

const EVENT_SEQUENCE = 2;
const EVENT_MAPPING = 3;
const EVENT_SCALAR = 4;
const EVENT_POP = 6;

interface Frame {
  kind: 'mapping' | 'sequence';
  path: string;
  index: number;
  /** In a mapping: the key just read, waiting for its value; undefined while the next event is a key. */
  pendingKey?: string;
}

/**
 * yamlPositions maps each key path of a YAML document ("backends.1.weight") to the 1-based
 * line and column of its key (or, for sequence items, of the item), so that validation
 * problems found after parsing can still point at the line that caused them.
 */
export function yamlPositions(source: string): Map<string, Position> {
  const positions = new Map<string, Position>();
  let events: Event[];
  try {
    events = parseEvents(source, {});
  } catch {
    return positions;
  }
  const lineStarts = [0];
  for (let i = 0; i < source.length; i++) if (source[i] === '\n') lineStarts.push(i + 1);
  const at = (offset: number): Position => {
    let low = 0;
    let high = lineStarts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (lineStarts[mid]! <= offset) low = mid;
      else high = mid - 1;
    }
    return { line: low + 1, column: offset - lineStarts[low]! + 1 };
  };
  const join = (base: string, key: string | number): string => (base === '' ? String(key) : `${base}.${key}`);

  const stack: Frame[] = [];
  // Returns the path of the node that starts now, and records where it starts.
  const enterNode = (offset: number): string => {
    const parent = stack[stack.length - 1];
    if (!parent) return '';
    if (parent.kind === 'sequence') {
      const path = join(parent.path, parent.index++);
      if (offset >= 0) positions.set(path, at(offset));
      return path;
    }
    const key = parent.pendingKey ?? '';
    parent.pendingKey = undefined;
    return join(parent.path, key);
  };

  for (const event of events) {
    if (event.type === EVENT_SCALAR) {
      const scalar = event as ScalarEvent;
      const parent = stack[stack.length - 1];
      if (parent?.kind === 'mapping' && parent.pendingKey === undefined) {
        parent.pendingKey = getScalarValue(source, scalar);
        if (scalar.valueStart >= 0) positions.set(join(parent.path, parent.pendingKey), at(scalar.valueStart));
        continue;
      }
      enterNode(scalar.valueStart);
    } else if (event.type === EVENT_MAPPING || event.type === EVENT_SEQUENCE) {
      const path = enterNode(event.start);
      stack.push({ kind: event.type === EVENT_MAPPING ? 'mapping' : 'sequence', path, index: 0 });
    } else if (event.type === EVENT_POP) {
      stack.pop();
    } else if (event.type === 5 /* alias */) {
      enterNode(-1);
    }
  }
  return positions;
}
