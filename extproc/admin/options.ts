/**
 * @module admin/options
 * The `admin` section of the gateway config: a read-only HTML page (the live diagram, cost
 * tables, last requests). Off unless enabled; bound to the loopback interface unless `host`
 * says otherwise, because it shows callers, models and costs. Changes need a restart.
 */
import { z } from 'zod';

export const adminOptionsSchema = z
  .object({
    enabled: z.boolean().default(false),
    /** Interface the page binds; 127.0.0.1 keeps it on the machine (use 0.0.0.0 only behind access control). */
    host: z.string().min(1).default('127.0.0.1'),
    /** HTTP port (0 picks a free one, for tests). Accepts a string for `${ADMIN_PORT:-9465}`. */
    port: z.coerce.number().int().min(0).max(65535).default(9465),
    /** How many of the last requests' records the page lists. */
    recentRecords: z.number().int().min(1).max(1000).default(50),
  })
  .strict();

export type AdminOptions = z.output<typeof adminOptionsSchema>;
