import { expect, test } from './fixtures';
import { signIn, user, hydrated } from './helpers';

test('a team lead changes the budget after confirming its effect; the chart and its limit line move', async ({ page }) => {
  await signIn(page, user('lee'), '/teams/payments');
  await hydrated(page);
  await page.getByTestId('budget-link').click();
  await expect(page).toHaveURL(/\/teams\/payments\/budget$/);
  await hydrated(page);

  const chart = page.getByTestId('spend-chart');
  await expect(chart).toBeVisible();
  const limitLine = page.getByTestId('limit-line');
  const before = Number(await limitLine.getAttribute('data-limit-cents'));
  const beforeY = Number(await limitLine.getAttribute('data-y'));
  expect(before).toBeGreaterThan(0);
  // The demo month already has spend: bars, a line and the projection.
  await expect(page.getByTestId('projection')).toBeAttached();
  await expect(page.getByTestId('by-model')).toContainText('gpt-4o-mini');
  await expect(page.getByTestId('callers')).toContainText('payments-api');

  // Live validation before anything is sent.
  const limit = page.getByLabel('Limit (US dollars per period)');
  await limit.fill('lots');
  await expect(page.getByText('Enter an amount in dollars')).toBeVisible();
  await expect(page.getByRole('button', { name: 'Review change' })).toBeDisabled();

  const next = before + 7_500;
  const nextDollars = (next / 100).toFixed(2);
  await limit.fill(nextDollars);
  await page.getByLabel('Alert at (% of the limit)').fill('50');
  await page.getByRole('button', { name: 'Review change' }).click();
  const confirm = page.getByTestId('budget-confirm');
  await expect(confirm).toBeVisible();
  await expect(page.getByTestId('budget-effect')).toHaveText(
    `Blocks new requests once spend reaches $${nextDollars} per month; alerts the team at 50% ($${(next / 200).toFixed(2)}).`,
  );
  await confirm.getByRole('button', { name: 'Confirm' }).click();
  await expect(page.getByTestId('budget-saved')).toContainText('Saved as version');
  await expect(page.getByTestId('limit')).toHaveText(`$${nextDollars} per month`);
  await expect(limitLine).toHaveAttribute('data-limit-cents', String(next));
  const afterY = Number(await limitLine.getAttribute('data-y'));
  expect(afterY).not.toBe(beforeY);

  // The change is in the history after a reload, and the new limit stays.
  await page.reload();
  await hydrated(page);
  await expect(page.getByTestId('budget-history')).toContainText(`limit $${(before / 100).toFixed(2)} → $${nextDollars}`);
  await expect(page.getByTestId('limit-line')).toHaveAttribute('data-limit-cents', String(next));

  // A gateway key: shown once, then only its prefix.
  await page.getByLabel('Key name').fill('checkout-e2e');
  await page.getByLabel('Workspace (optional)').fill('checkout');
  await page.getByRole('button', { name: 'Create key' }).click();
  const shown = page.getByTestId('new-gateway-key');
  await expect(shown).toContainText('pvg_');
  const key = (await shown.textContent())!.trim();
  await expect(page.getByTestId('gateway-keys')).toContainText('checkout-e2e');
  await page.reload();
  await hydrated(page);
  await expect(page.getByTestId('gateway-keys')).toContainText('checkout-e2e');
  expect(await page.content()).not.toContain(key);

  // A workspace budget inside the team.
  await page.getByLabel('Workspace', { exact: true }).fill('checkout');
  await page.getByLabel('Limit (US dollars)', { exact: true }).fill('50');
  await page.getByRole('button', { name: 'Save workspace budget' }).click();
  await expect(page.getByTestId('workspace-budgets')).toContainText('checkout');
  await expect(page.getByTestId('workspace-budgets')).toContainText('of $50.00 per month');
});

test('a developer sees the team budget read-only', async ({ page }) => {
  await signIn(page, user('dana'), '/teams/payments/budget');
  await hydrated(page);
  await expect(page.getByTestId('spend-chart')).toBeVisible();
  await expect(page.getByTestId('readonly-note')).toContainText('Only the team\'s lead');
  await expect(page.getByTestId('budget-readonly')).toBeVisible();
  await expect(page.getByRole('button', { name: 'Review change' })).toHaveCount(0);
  await expect(page.getByLabel('Limit (US dollars per period)')).toHaveCount(0);
  await expect(page.getByRole('button', { name: 'Create key' })).toHaveCount(0);
  // Another team's budget is not theirs to see.
  const other = await page.goto('/teams/search/budget');
  expect(other?.status()).toBe(403);
});

test('a platform PM sees every team on the LLM gateway page but cannot edit prices', async ({ page }) => {
  await signIn(page, user('pat'), '/llm');
  await hydrated(page);
  const budgets = page.getByTestId('all-budgets');
  await expect(budgets).toContainText('payments');
  await expect(budgets).toContainText('search');
  await expect(page.getByTestId('prices')).toContainText('gpt-4o-mini');
  await expect(page.getByRole('button', { name: 'Save price' })).toHaveCount(0);
});
