// A fake ReclaimControl for the guards' unit specs: figures the spec sets, requests recorded.
import { BehaviorSubject } from 'rxjs';
import type { ReclaimControl } from '../../lib/control.js';

export type Request = [cause: 'quota' | 'heap' | 'stale', downTo: number, olderThan: number | undefined];

export class FakeControl implements ReclaimControl {
  used = 0;
  max = 1000;
  lowWater = 750;
  softMax = 900;
  highPressure = false;
  /** The spec drives the pressure edges through this. */
  readonly pressure$ = new BehaviorSubject<'normal' | 'high'>('normal');
  time = 0;
  readonly requests: Request[] = [];
  private stops: (() => void)[] = [];

  constructor(used = 0) {
    this.used = used;
  }

  now(): number {
    return this.time;
  }

  requestReclaim(cause: 'quota' | 'heap' | 'stale', downTo: number, olderThan?: number): void {
    this.requests.push([cause, downTo, olderThan]);
  }

  onShutdown(stop: () => void): void {
    this.stops.push(stop);
  }

  /** What the tracker's shutdown does for the guards: call every hook once. */
  shutdown(): void {
    const stops = this.stops;
    this.stops = [];
    for (const stop of stops) stop();
  }
}
