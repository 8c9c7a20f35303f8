/**
 * Single keys from the terminal (raw mode, no Enter needed), for the backfill's live controls. In raw mode Ctrl-C
 * arrives as the byte 0x03 rather than as SIGINT, so the handler sees it as a key. The terminal is put back in
 * cooked mode on dispose and on any exit, including process.exit() from a second Ctrl-C.
 */
export function readKeys(onKey: (key: string) => void | Promise<void>): { dispose: () => void } {
  const stdin = process.stdin;
  if (!stdin.isTTY) return { dispose: () => undefined };
  const restore = () => {
    if (stdin.isTTY && stdin.isRaw) stdin.setRawMode(false);
    process.stderr.write('\u001b[?25h'); // the progress bar hides the cursor
  };
  const onData = (data: Buffer) => {
    for (const ch of data.toString('utf8')) void onKey(ch);
  };
  stdin.setRawMode(true);
  stdin.resume();
  stdin.on('data', onData);
  process.on('exit', restore);
  return {
    dispose: () => {
      stdin.off('data', onData);
      restore();
      stdin.pause();
      process.off('exit', restore);
    },
  };
}
