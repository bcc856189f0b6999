// TypeDoc plugin: members inherited from RxJS (e.g. `QueueSender` is an rxjs `Observer`) carry
// RxJS's own TSDoc, whose `{@link guide/… text}` links are relative to rxjs.dev. Point them
// there, so the reference links to the right page and the build has no unresolved link.
import { Converter } from 'typedoc';

const RXJS_DOCS = 'https://rxjs.dev/';
const RELATIVE = /^\s*((?:guide|api|deprecations)\/\S+)\s*(.*)$/s;

function fixParts(parts) {
  for (const part of parts ?? []) {
    if (part.kind !== 'inline-tag' || !part.tag.startsWith('@link') || part.target !== undefined) continue;
    const match = RELATIVE.exec(part.text);
    if (!match) continue;
    part.target = RXJS_DOCS + match[1];
    part.text = match[2] || match[1];
  }
}

/** @param {import('typedoc').Application} app */
export function load(app) {
  app.converter.on(Converter.EVENT_RESOLVE_BEGIN, (context) => {
    for (const reflection of Object.values(context.project.reflections)) {
      const comment = reflection.comment;
      if (!comment) continue;
      fixParts(comment.summary);
      for (const tag of comment.blockTags) fixParts(tag.content);
    }
  });
}
