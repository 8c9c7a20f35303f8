import assert from 'node:assert/strict';
import { AdaptiveBatchSize } from '../src/operations/backfill/batch-size.js';

/** The adaptive batch size: aims each batch at targetBatchMs, shrinks at once after a batch that ran long. */
describe('backfill: adaptive batch size', () => {
  const settings = { size: 1000, minSize: 100, maxSize: 100_000, targetBatchMs: 100 };

  it('sizes the next batch from a batch that ran long at once, and grows back over several batches', () => {
    const sizer = new AdaptiveBatchSize(settings);
    sizer.observe(1000, 100); // 0.1 ms per row: on target
    assert.equal(sizer.size, 1000);
    sizer.observe(1000, 400); // ran 4× its target: its rows' locks were held 400 ms
    assert.equal(sizer.size, 250, 'the next batch is sized for the slow stretch, not for the average');
    const sizes: number[] = [];
    for (let i = 0; i < 12; i++) {
      sizer.observe(sizer.size, sizer.size * 0.1); // back on target
      sizes.push(sizer.size);
    }
    assert.ok(sizes[0]! < 500, `grows back gradually: ${sizes.join(',')}`);
    assert.ok(sizes.at(-1)! >= 900, `and reaches the target again: ${sizes.join(',')}`);
  });

  it('averages a batch that ran a little over its target, as before', () => {
    const sizer = new AdaptiveBatchSize(settings);
    sizer.observe(1000, 100);
    sizer.observe(1000, 140); // 1.4× the target: not long enough to be taken at its word
    assert.equal(sizer.size, Math.round(100 / (0.3 * 0.14 + 0.7 * 0.1)));
  });

  it('keeps under the cap it is given, never below minSize', () => {
    let cap: number | null = 300;
    const sizer = new AdaptiveBatchSize(settings, () => cap);
    assert.equal(sizer.size, 300);
    cap = 10;
    assert.equal(sizer.size, 100);
    cap = null;
    assert.equal(sizer.size, 1000);
  });
});
