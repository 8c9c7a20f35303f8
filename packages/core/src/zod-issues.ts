import type { z } from 'zod';

/** One line listing each issue as `path: message`, for error messages a person reads. */
export function zodIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');
}
