/**
 * @module admin
 * The read-only admin page: the live diagram, cost tables and last requests (`admin` config section).
 */
export { adminOptionsSchema, type AdminOptions } from './options.js';
export { startAdminServer, type AdminDeps, type AdminServer } from './server.js';
export { LiveCounts, edgeCount, type CountsSnapshot } from './counts.js';
