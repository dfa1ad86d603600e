// Host messages quote commands and paths in backticks (`sudo setcap ...`), as in the terminal.
// The screens show those parts as code; everything stays text (no HTML is ever parsed).

export interface TextPart {
  text: string;
  code: boolean;
}

/** Splits a message at paired backticks; a lone or empty pair of backticks stays as written. */
export function splitInlineCode(message: string): TextPart[] {
  const parts: TextPart[] = [];
  const push = (text: string, code: boolean) => {
    if (!text) return;
    const last = parts[parts.length - 1];
    if (last && !last.code && !code) last.text += text;
    else parts.push({ text, code });
  };
  let rest = message;
  for (;;) {
    const open = rest.indexOf('`');
    const close = open < 0 ? -1 : rest.indexOf('`', open + 1);
    if (close < 0) break;
    if (close === open + 1) {
      push(rest.slice(0, close + 1), false);
    } else {
      push(rest.slice(0, open), false);
      push(rest.slice(open + 1, close), true);
    }
    rest = rest.slice(close + 1);
  }
  push(rest, false);
  return parts;
}
