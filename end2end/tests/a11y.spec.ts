import AxeBuilder from '@axe-core/playwright';
import { Page } from '@playwright/test';
import { hydrated, signIn, startSiteTask, user } from './helpers';
import { expect, test } from './fixtures';

/**
 * axe-core (npm `@axe-core/playwright`) on every page, in light and in dark
 * mode (the system preference, which the theme bootstrap follows): no serious
 * or critical violation of WCAG 2.1 A/AA is allowed. Pages are checked after
 * hydration, so the islands' markup is what is checked.
 */
async function audit(page: Page, path: string): Promise<string[]> {
  const found: string[] = [];
  for (const colorScheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme });
    await page.goto(path);
    if (await page.locator('leptos-island').count()) await hydrated(page);
    const isDark = await page.evaluate(() => document.documentElement.classList.contains('dark'));
    expect(isDark, `${path} in ${colorScheme} mode`).toBe(colorScheme === 'dark');
    const result = await new AxeBuilder({ page })
      .withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'])
      .analyze();
    for (const v of result.violations) {
      if (v.impact !== 'serious' && v.impact !== 'critical') continue;
      const where = v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join('; ');
      found.push(`${colorScheme} ${path}: ${v.id} (${v.impact}) ${v.help} at ${where}`);
    }
  }
  return found;
}

// Pages a team lead of payments sees (their team, budget, the wizard, a task).
const leadPages = [
  '/',
  '/teams/payments',
  '/teams/payments/budget',
  '/teams/payments/outcomes',
  '/catalog',
  '/catalog/component/default/payments-api',
  '/catalog/component/default/payments-api/outcomes',
  '/catalog/locations',
  '/create',
  '/create/templates/default/rust-axum-service',
  '/surveys',
  '/profile',
  '/notifications',
  '/no-such-page',
];

// Pages for the platform's people (PM and admin views).
const adminPages = [
  '/',
  '/llm',
  '/policies',
  '/capabilities',
  '/platform',
  '/admin/audit',
  '/admin/access',
  '/admin/integrations',
  '/admin/outcomes',
  '/admin/clusters',
];

test('the sign-in page has no serious accessibility violations', async ({ page }) => {
  expect(await audit(page, '/signin')).toEqual([]);
});

test('a team lead’s pages have no serious accessibility violations, light or dark', async ({ page }) => {
  test.setTimeout(120_000);
  await signIn(page, user('lee'), '/');
  await hydrated(page);
  const task = await startSiteTask(page, 'a11y-site');
  const found: string[] = [];
  for (const path of [...leadPages, `/create/tasks/${task}`]) found.push(...(await audit(page, path)));
  expect(found).toEqual([]);
});

test('the platform admin’s pages have no serious accessibility violations, light or dark', async ({ page }) => {
  test.setTimeout(120_000);
  await signIn(page, user('ada'), '/');
  await hydrated(page);
  const found: string[] = [];
  for (const path of adminPages) found.push(...(await audit(page, path)));
  expect(found).toEqual([]);
});
