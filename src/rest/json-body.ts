/**
 * JSON request bodies. JSON.parse itself takes any nesting, but everything after it that walks
 * the value recursively (validation, JSON.stringify for bind parameters, the ML code) overflows the
 * stack on deep documents: nesting is bounded before parsing, in one pass over the text.
 */

/** True when arrays/objects in `text` nest deeper than `max` (brackets inside strings ignored). */
export function nestsDeeperThan(text: string, max: number): boolean {
  // reaching depth max + 1 takes at least max + 1 characters: small bodies need no scan
  if (text.length <= max) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 || c === 123) {
      if (++depth > max) return true;
    } else if (c === 93 || c === 125) depth--;
  }
  return false;
}
