/** One target of issue 6: its figure, its baseline from the same run, a verdict and what limits it. */
export interface Target {
  id: string;
  what: string;
  figure: string;
  target: string;
  /** null: a figure with no pass/fail (a contrast, or a case without a target), or not measured. */
  pass: boolean | null;
  limit: string;
  /** For pass null: "figure only" rather than "not measured". */
  info?: boolean;
}
