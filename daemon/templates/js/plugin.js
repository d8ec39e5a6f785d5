// {{id}}: a linli action plugin in JavaScript, made by `linlid plugin new {{id}} --lang js`.
// One task per person in care who needs medical care, due within `window_days` (the plugin's
// configuration, checked by the host against CONFIG_SCHEMA). Errors: throw a string or a
// PluginError to report one on purpose; anything else thrown is a bug, which linli.js marks so
// the host counts it against the plugin. Ids arrive as BigInt.
import { log, config } from 'linli:plugin/host@0.2.0';
import { plugin, PluginError } from './linli.js';

const CONFIG_SCHEMA = JSON.stringify({
  type: 'object',
  additionalProperties: false,
  properties: { window_days: { type: 'integer', minimum: 1, maximum: 31 } },
});

const YES = new Set(['yes', 'true', '是', '1', 'y']);

function settings() {
  let given;
  try {
    given = JSON.parse(config() || '{}');
  } catch (e) {
    // A polite error: the host reports it and does not count it against the plugin.
    throw new PluginError(`the configuration is not JSON: ${e}`);
  }
  return { window_days: 14, ...given };
}

/** `at` (RFC 3339 with offset) plus `days`, written with the same offset. */
function plusDays(at, days) {
  const m = /([+-])(\d\d):(\d\d)$/.exec(at);
  const offsetMin = m ? (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) : 0;
  const t = new Date(Date.parse(at) + days * 86400000 + offsetMin * 60000);
  const pad = (n) => String(n).padStart(2, '0');
  const sign = offsetMin < 0 ? '-' : '+';
  const off = Math.abs(offsetMin);
  return `${t.getUTCFullYear()}-${pad(t.getUTCMonth() + 1)}-${pad(t.getUTCDate())}T` +
    `${pad(t.getUTCHours())}:${pad(t.getUTCMinutes())}:${pad(t.getUTCSeconds())}` +
    `${sign}${pad(Math.floor(off / 60))}:${pad(off % 60)}`;
}

export const action = plugin({
  describe() {
    return {
      id: '{{id}}',
      version: '1.0.0',
      names: { zh: '{{id}}', en: '{{id}}' },
      actions: [{
        id: 'escort',
        names: { zh: '就医陪护', en: 'Escort to hospital' },
        defaultCron: '0 9 1 * *',
        targetKind: 'person',
        categories: ['special_difficulty_elder'],
      }],
      configSchema: CONFIG_SCHEMA,
    };
  },

  plan(occurrence, targets) {
    const window = settings().window_days;
    const checklist = [
      { id: 'seen', question: { zh: '是否已就诊？', en: 'Seen by a doctor?' }, kind: 'yes-no',
        choices: [], choiceLabels: [], required: true, requiredWhen: undefined },
      { id: 'advice', question: { zh: '医嘱', en: "Doctor's advice" }, kind: 'text',
        choices: [], choiceLabels: [], required: false, requiredWhen: undefined },
    ];
    const drafts = [];
    targets.forEach((target, i) => {
      if (target.tag !== 'person') return;
      const p = target.val;
      if (!p.needs.includes('medical')) return;
      drafts.push({
        target: i,
        kind: 'escort',
        title: { zh: '陪同就医', en: 'Escort to hospital' },
        dueStart: occurrence.scheduledAt,
        dueEnd: plusDays(occurrence.scheduledAt, window),
        priority: p.age >= 80 ? 'high' : 'normal',
        requirements: { skills: ['driving'], clearances: [], teamSize: 1, gender: undefined,
          maxDistanceKm: undefined, languages: [], roles: [] },
        checklist: 0,
      });
    });
    log('info', `${drafts.length} escorts for ${targets.length} people`);
    return { checklists: [checklist], drafts };
  },

  review(task, report) {
    if (!report.reached) {
      return { tag: 'follow-up', val: { severity: 'routine', reason: 'not reached: arrange the escort again' } };
    }
    const answers = new Map(report.answers.map((a) => [a.item, a.value.trim()]));
    const missing = task.checklist.filter((c) => c.required && !answers.get(c.id)).map((c) => c.id);
    if (missing.length) return { tag: 'rejected', val: missing };
    if (YES.has((answers.get('seen') || '').toLowerCase())) return { tag: 'accepted' };
    return { tag: 'follow-up', val: { severity: 'routine', reason: 'not seen by a doctor yet' } };
  },
});
