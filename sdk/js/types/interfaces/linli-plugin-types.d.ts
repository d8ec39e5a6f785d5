declare module 'linli:plugin/types@0.2.0' {
  /**
   * A text in Chinese (what users read) and English.
   */
  export interface Names {
    zh: string,
    en: string,
  }
  /**
   * What an action plans tasks for.
   * # Variants
   * 
   * ## `"person"`
   * 
   * People in care of the categories the action names.
   * ## `"community"`
   * 
   * Villages and communities (e.g. emergency drills).
   */
  export type TargetKind = 'person' | 'community';
  /**
   * One action a plugin offers, e.g. "monthly visit".
   */
  export interface Action {
    /**
     * Stable identifier, lower-case with dashes: `monthly-visit`.
     */
    id: string,
    names: Names,
    /**
     * Default recurrence: a 5-field cron expression (POSIX), e.g. `0 9 1 * *`.
     */
    defaultCron: string,
    targetKind: TargetKind,
    /**
     * For person actions: the categories it plans for, e.g. `special_difficulty_elder`.
     */
    categories: Array<string>,
  }
  /**
   * What `describe` answers.
   */
  export interface PluginInfo {
    /**
     * Stable identifier, lower-case with dashes: `elderly-visit`.
     */
    id: string,
    /**
     * Semantic version of the plugin, e.g. `1.2.0`.
     */
    version: string,
    names: Names,
    actions: Array<Action>,
    /**
     * The JSON Schema of the plugin's configuration (JSON text), checked by the host when
     * the configuration is set, when a version is deployed and by `linlid plugin check`.
     * At most 64 KiB. The host understands `type`, `properties`, `required`,
     * `additionalProperties`, `enum`, `const`, `minimum`, `maximum`, `exclusiveMinimum`,
     * `exclusiveMaximum`, `multipleOf`, `minLength`, `maxLength`, `items`, `minItems`,
     * `maxItems`, `uniqueItems` and the annotations `title`, `description`, `default`,
     * `examples`, `$schema`, `$id`; a schema using anything else is refused.
     */
    configSchema?: string,
  }
  /**
   * The occurrence of a duty being planned.
   */
  export interface Occurrence {
    duty: string,
    action: string,
    /**
     * RFC 3339 with offset, in the duty's time zone.
     */
    scheduledAt: string,
    /**
     * IANA time zone of the duty, e.g. `Asia/Shanghai`.
     */
    timeZone: string,
  }
  export interface Disability {
    /**
     * visual, hearing, speech, physical, intellectual, mental or multiple.
     */
    kind: string,
    /**
     * 1 (most severe) to 4.
     */
    grade: number,
  }
  /**
   * What a plugin is told of a person in care: what planning needs, nothing that identifies
   * them (no name, resident ID, phone or address).
   */
  export interface Person {
    id: bigint,
    /**
     * 12-digit community code.
     */
    community: string,
    age: number,
    /**
     * `female` or `male`.
     */
    gender: string,
    categories: Array<string>,
    /**
     * For special-difficulty elders: living_alone, empty_nest, advanced_age, ...
     */
    circumstances: Array<string>,
    disability?: Disability,
    /**
     * alone, elderly_couple, with_family, with_relatives or institution.
     */
    living?: string,
    hasGuardian: boolean,
    needs: Array<string>,
  }
  export interface Community {
    code: string,
    name: string,
    /**
     * `urban` or `rural`.
     */
    settlement?: string,
    population?: number,
  }
  export type Target = TargetPerson | TargetCommunity;
  export interface TargetPerson {
    tag: 'person',
    val: Person,
  }
  export interface TargetCommunity {
    tag: 'community',
    val: Community,
  }
  /**
   * # Variants
   * 
   * ## `"low"`
   * 
   * ## `"normal"`
   * 
   * ## `"high"`
   * 
   * ## `"urgent"`
   */
  export type Priority = 'low' | 'normal' | 'high' | 'urgent';
  /**
   * What the volunteers of a task must bring.
   */
  export interface Requirements {
    /**
     * Skill tags every team must cover, e.g. `first_aid`.
     */
    skills: Array<string>,
    /**
     * Clearances every visitor must hold unexpired, e.g. `safeguarding`.
     */
    clearances: Array<string>,
    /**
     * People in the team (at least 1).
     */
    teamSize: number,
    /**
     * `female` or `male` when the visit requires it.
     */
    gender?: string,
    /**
     * Farthest a visitor may live from the target, in kilometres.
     */
    maxDistanceKm?: number,
    /**
     * Languages or dialects at least one visitor must speak, e.g. `手语`.
     */
    languages: Array<string>,
    /**
     * Community roles every visitor must hold, e.g. `child_director` (the vocabulary's
     * slugs: an unknown role is refused, naming the nearest).
     */
    roles: Array<string>,
  }
  /**
   * # Variants
   * 
   * ## `"yes-no"`
   * 
   * ## `"text"`
   * 
   * ## `"number"`
   * 
   * ## `"choice"`
   */
  export type AnswerKind = 'yes-no' | 'text' | 'number' | 'choice';
  /**
   * "Required when the answer to `item` is `equals`" (e.g. `fell_recently` = `yes`).
   */
  export interface Condition {
    /**
     * An earlier question of the same checklist.
     */
    item: string,
    /**
     * `yes`/`no` for a yes-no question, one of its choices for a choice question.
     */
    equals: string,
  }
  /**
   * One question the visit report must answer.
   */
  export interface ChecklistItem {
    id: string,
    question: Names,
    kind: AnswerKind,
    /**
     * For `choice`: the allowed answers (stable ids, e.g. `fraud`).
     */
    choices: Array<string>,
    /**
     * For `choice`: what people read for each choice, in the same order (e.g. 诈骗 / Fraud);
     * empty to show the ids. A report may answer with an id or either label.
     */
    choiceLabels: Array<Names>,
    required: boolean,
    /**
     * Required only when another answer is given (`required` is then false).
     */
    requiredWhen?: Condition,
  }
  /**
   * A task the plugin asks the host to create.
   */
  export interface TaskDraft {
    /**
     * Index into the `targets` list given to `plan`.
     */
    target: number,
    /**
     * What kind of task, e.g. `monthly-visit`, `weekly-check`, `drill`.
     */
    kind: string,
    title: Names,
    /**
     * RFC 3339 instants bounding when the task is due.
     */
    dueStart: string,
    dueEnd: string,
    priority: Priority,
    requirements: Requirements,
    /**
     * Index into the `checklists` of the plan: the questions the visit report must answer.
     */
    checklist: number,
  }
  /**
   * What `plan` answers. Checklists are listed once and referred to by index, since most
   * drafts of an occurrence share one.
   */
  export interface PlanResult {
    checklists: Array<Array<ChecklistItem>>,
    drafts: Array<TaskDraft>,
  }
  /**
   * A task as stored, given back to `review`.
   */
  export interface Task {
    id: bigint,
    kind: string,
    target: Target,
    dueStart: string,
    dueEnd: string,
    checklist: Array<ChecklistItem>,
  }
  export interface Answer {
    item: string,
    value: string,
  }
  /**
   * What the volunteers reported.
   */
  export interface VisitReport {
    /**
     * RFC 3339.
     */
    visitedAt: string,
    durationMinutes: number,
    /**
     * Whether the person (or community contact) was reached.
     */
    reached: boolean,
    answers: Array<Answer>,
    notes: string,
  }
  /**
   * # Variants
   * 
   * ## `"routine"`
   * 
   * Within the week.
   * ## `"urgent"`
   * 
   * The same day.
   */
  export type Severity = 'routine' | 'urgent';
  export interface FollowUp {
    severity: Severity,
    reason: string,
  }
  export type ReviewOutcome = ReviewOutcomeAccepted | ReviewOutcomeFollowUp | ReviewOutcomeRejected;
  export interface ReviewOutcomeAccepted {
    tag: 'accepted',
  }
  export interface ReviewOutcomeFollowUp {
    tag: 'follow-up',
    val: FollowUp,
  }
  /**
   * The report cannot be accepted; the reasons say what to fix.
   */
  export interface ReviewOutcomeRejected {
    tag: 'rejected',
    val: Array<string>,
  }
}
