declare module 'linli:plugin/host@0.2.0' {
  export function log(level: Level, message: string): void;
  /**
   * The plugin's configuration, as JSON text (`{}` when none is set).
   */
  export function config(): string;
  /**
   * # Variants
   * 
   * ## `"debug"`
   * 
   * ## `"info"`
   * 
   * ## `"warn"`
   * 
   * ## `"error"`
   */
  export type Level = 'debug' | 'info' | 'warn' | 'error';
}
