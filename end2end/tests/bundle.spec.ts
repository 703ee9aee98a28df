import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Page } from '@playwright/test';
import { hydrated, signIn, startSiteTask, user } from './helpers';
import { expect, test } from './fixtures';

/**
 * What each page downloads of the browser bundle on a first visit (empty
 * cache): the main module, the split loader and the chunks of the islands the
 * page shows (the server sends the gzip and brotli copies `scripts/build.sh`
 * writes). `scripts/bench-bundle.sh` runs this spec with
 * PAVED_BUNDLE_REPORT set to write the table to bench/bundle-results.md; the
 * test suite runs it to check each island's code only reaches its own pages.
 */
type Load = { bytes: number; files: string[] };

async function firstLoad(page: Page, path: string): Promise<Load> {
  const load: Load = { bytes: 0, files: [] };
  const pending: Promise<void>[] = [];
  const listener = (response: import('@playwright/test').Response) => {
    const url = new URL(response.url());
    if (!url.pathname.startsWith('/pkg/') || !/\.(wasm|js)$/.test(url.pathname)) return;
    pending.push(
      (async () => {
        const sizes = await response.request().sizes();
        load.bytes += sizes.responseBodySize;
        load.files.push(url.pathname.slice('/pkg/'.length));
      })(),
    );
  };
  // A fresh cache for every page: the numbers are first loads.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.clearBrowserCache');
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
  page.on('response', listener);
  await page.goto(path);
  await hydrated(page);
  await Promise.all(pending);
  page.off('response', listener);
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: false });
  return load;
}

const island = (load: Load, name: string) => load.files.some((f) => f.startsWith(`split_${name}_loader`));

test('each page loads only the code of the islands it shows', async ({ page }) => {
  test.setTimeout(90_000);
  await signIn(page, user('lee'), '/');
  await hydrated(page);

  // A scaffolder task to show on the task page.
  const id = await startSiteTask(page, 'bundle-site');

  const pages: [string, string][] = [
    ['home', '/'],
    ['catalog', '/catalog'],
    ['entity', '/catalog/component/default/payments-api'],
    ['wizard', '/create/templates/default/rust-axum-service'],
    ['budget', '/teams/payments/budget'],
    ['task', `/create/tasks/${id}`],
  ];
  const loads: Record<string, Load> = {};
  for (const [name, path] of pages) loads[name] = await firstLoad(page, path);

  // The wizard's and the budget editor's code are fetched only on their pages.
  for (const [name] of pages) {
    expect(island(loads[name], 'wizard'), `wizard code on ${name}`).toBe(name === 'wizard');
    expect(island(loads[name], 'budget_board'), `budget editor code on ${name}`).toBe(name === 'budget');
  }
  expect(island(loads.task, 'task_progress')).toBe(true);
  expect(island(loads.entity, 'secrets_panel')).toBe(true);
  // Every page gets the main module.
  for (const [name] of pages) expect(loads[name].files, name).toContain('paved.wasm');

  const report = process.env.PAVED_BUNDLE_REPORT;
  if (report) {
    const kb = (b: number) => (b / 1024).toFixed(0);
    // The same files' gzip copies, for a figure that does not depend on the browser choosing brotli.
    const pkg = join(process.env.PAVED_SITE_ROOT!, 'pkg');
    const gzip = (l: Load) => l.files.reduce((sum, f) => sum + statSync(join(pkg, `${f}.gz`)).size, 0);
    const rows = pages.map(([name, path]) => {
      const l = loads[name];
      const wasm = l.files.filter((f) => f.endsWith('.wasm')).length;
      return `| ${name} | \`${path.replace(id, '<id>')}\` | **${kb(gzip(l))} KB** | ${kb(l.bytes)} KB | ${wasm} |`;
    });
    writeFileSync(
      report,
      [
        '# Browser bundle per page (first load)',
        '',
        `Measured by \`scripts/bench-bundle.sh\` on ${new Date().toISOString().slice(0, 10)}: Chromium with an empty cache per page; every /pkg/*.wasm and *.js file the page fetched, as gzip (the build's .gz copies) and as transferred (Chromium asks for brotli).`,
        '',
        '| page | path | wasm + js, gzip | transferred (brotli) | wasm files |',
        '|---|---|---|---|---|',
        ...rows,
        '',
      ].join('\n'),
    );
  }
});
