/**
 * The audit of one tracker's books, run after every step and inside every `collapse` event:
 * `audit()` finds no problem, `used ≥ 0`, and `used = Σ claims`.
 *
 * @module
 */
import { counters, violation } from './report.js';
import type { Slot } from './trackers.js';

export function checkBooks(slot: Slot, where: string): void {
  counters.audits++;
  const report = slot.tracker.audit();
  if (report.problems.length > 0) violation(`${slot.name} ${where}: audit: ${report.problems.join('; ')}`);
  if (!(slot.tracker.used >= 0)) violation(`${slot.name} ${where}: used is ${slot.tracker.used}`);
  if (report.claimed !== slot.tracker.used) violation(`${slot.name} ${where}: used ${slot.tracker.used} but claims add up to ${report.claimed}`);
}
