/// <reference path="./interfaces/linli-plugin-action.d.ts" />
/// <reference path="./interfaces/linli-plugin-host.d.ts" />
/// <reference path="./interfaces/linli-plugin-types.d.ts" />
declare module 'linli:plugin/action-plugin@0.2.0' {
  export type * as LinliPluginHost020 from 'linli:plugin/host@0.2.0'; // import linli:plugin/host@0.2.0
  export type * as LinliPluginTypes020 from 'linli:plugin/types@0.2.0'; // import linli:plugin/types@0.2.0
  export * as action from 'linli:plugin/action@0.2.0'; // export linli:plugin/action@0.2.0
}
