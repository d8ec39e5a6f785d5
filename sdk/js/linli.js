// linli's JavaScript helper for plugins built with jco (componentize-js).
//
// `plan` and `review` answer `result<_, string>`: a plugin reports an error it means (bad
// configuration, data it cannot plan for) by throwing a string or a `PluginError`; the host
// shows it and does not hold it against the plugin. Anything else thrown — a TypeError, an
// undefined variable — is a bug: this wrapper marks it `linli:bug:` and the host counts it like
// a crash (repeated, it quarantines the plugin), rather than taking it for a polite error.
//
//   import { plugin, PluginError } from './linli.js';
//   export const action = plugin({ describe() {…}, plan(occurrence, targets) {…}, review(task, report) {…} });

/** An error the plugin means to report (the host shows its message). */
export class PluginError extends Error {}

/** The mark the host reads as "a bug, not a reported error". */
export const BUG_MARK = 'linli:bug:';

function guard(name, f) {
  return (...args) => {
    try {
      return f(...args);
    } catch (e) {
      if (typeof e === 'string') throw e;
      if (e instanceof PluginError) throw e.message;
      const detail = e && e.stack ? `${e}\n${e.stack}` : String(e);
      throw `${BUG_MARK} ${name}: ${detail}`;
    }
  };
}

/** The `action` export, with errors reported as the host expects. */
export function plugin(impl) {
  return {
    describe: impl.describe,
    plan: guard('plan', impl.plan),
    review: guard('review', impl.review),
  };
}
