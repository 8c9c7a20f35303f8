import { z } from 'zod';
import { ValidationError } from './errors.js';
import { zodIssues } from './zod-issues.js';

/** The controller's settings that are plain values (the flag source and logger are checked by type). */
export const controllerSettingsSchema = z.strictObject({
  /** Identifies this controller in leadership, events and spans. */
  instanceId: z.string().min(1).max(200).optional(),
  /** Periodic re-check (followers retry leadership this often too). */
  intervalMs: z.number().int().min(10).max(3_600_000).default(5000),
  /** Contract drops the old column too. Off by default: a flag never drops a column by itself. */
  dropOldColumn: z.boolean().default(false),
});

export type ControllerSettingsInput = z.input<typeof controllerSettingsSchema>;
export type ControllerSettings = z.output<typeof controllerSettingsSchema>;

export function parseControllerSettings(input: unknown): ControllerSettings {
  const parsed = controllerSettingsSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  throw new ValidationError('PF_INVALID_OPTIONS', `Invalid controller options: ${zodIssues(parsed.error)}.`, {
    value: input,
    hint: 'See ControllerOptions: intervalMs is an integer ≥ 10, dropOldColumn a boolean, instanceId a non-empty string.',
  });
}
