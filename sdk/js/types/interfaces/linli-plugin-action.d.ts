/// <reference path="./linli-plugin-types.d.ts" />
declare module 'linli:plugin/action@0.2.0' {
  export function describe(): PluginInfo;
  /**
   * Drafts the tasks of one occurrence for its targets. The host may split a large
   * occurrence's targets into several calls (batches of a few thousand), so plan each target
   * on its own. An error aborts the occurrence.
   */
  export function plan(occurrence: Occurrence, targets: Array<Target>): PlanResult;
  /**
   * Judges a visit report.
   */
  export function review(task: Task, report: VisitReport): ReviewOutcome;
  export type PluginInfo = import('linli:plugin/types@0.2.0').PluginInfo;
  export type Occurrence = import('linli:plugin/types@0.2.0').Occurrence;
  export type Target = import('linli:plugin/types@0.2.0').Target;
  export type PlanResult = import('linli:plugin/types@0.2.0').PlanResult;
  export type Task = import('linli:plugin/types@0.2.0').Task;
  export type VisitReport = import('linli:plugin/types@0.2.0').VisitReport;
  export type ReviewOutcome = import('linli:plugin/types@0.2.0').ReviewOutcome;
}
