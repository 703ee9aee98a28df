import { expect, test } from './fixtures';
import { signIn, user } from './helpers';

test('a PM lands on the platform home, compares teams and opens a capability whose SLO is breached', async ({ page }) => {
  await signIn(page, user('pat'), '/');
  await expect(page.getByRole('heading', { name: 'Teams over the last 30 days' })).toBeVisible();

  // Adoption as trends: each tile has its weekly sparkline.
  const tiles = page.getByTestId('adoption-tile');
  await expect(tiles).toHaveCount(4);
  await expect(tiles.first()).toContainText('Teams onboarded');
  await expect(tiles.first().getByRole('img')).toHaveAttribute('aria-label', /per week over the last 12 weeks/);

  // Every team side by side, sorted by AI cost: payments spends more than search in the demo.
  const rows = page.getByTestId('team-comparison').getByTestId('team-row');
  await expect(rows.first()).toContainText('payments');
  await expect(rows.nth(1)).toContainText('search');
  await expect(rows.first().getByRole('img')).toHaveAttribute('aria-label', /AI cost per day over the last 30 days/);
  // Sorting is a link: by team name, search comes after payments too; by people, payments (7) leads.
  await page.getByRole('link', { name: 'People' }).click();
  await expect(page).toHaveURL(/sort=members/);
  await expect(page.getByRole('columnheader', { name: /People/ })).toHaveAttribute('aria-sort', 'descending');
  await expect(rows.first()).toContainText('payments');

  // The demo's gpt-4o outage: the model route is below its SLO and needs attention.
  const attention = page.getByTestId('attention');
  await expect(attention).toContainText('Model gpt-4o');
  await attention.getByRole('link', { name: 'Model gpt-4o', exact: true }).click();
  await expect(page).toHaveURL(/\/capabilities\?id=model%3Agpt-4o$/);
  const detail = page.getByTestId('capability-detail');
  await expect(detail.getByRole('heading', { name: 'Model gpt-4o', exact: true })).toBeVisible();
  await expect(detail.getByTestId('slo').first()).toContainText('Breached');
  await expect(detail.getByTestId('slo-numbers').first()).toContainText(/\d+ good of \d+ over 28 days = \d/);
  await expect(detail.getByTestId('capability-owner')).toHaveText('platform');
  // The owner heard about it once, through notifications.
  await page.goto('/notifications');
  await expect(page.getByText('Model gpt-4o is below its SLO')).toHaveCount(1);
});

test('a developer home shows their runs, their team and notifications, and no platform numbers', async ({ page }) => {
  await signIn(page, user('dana'), '/');
  await expect(page.getByRole('heading', { name: 'Your recent runs' })).toBeVisible();
  await expect(page.getByRole('heading', { name: 'Team payments' })).toBeVisible();
  await expect(page.getByTestId('home-unread')).toBeVisible();
  await expect(page.getByTestId('team-comparison')).toHaveCount(0);
  const response = await page.goto('/platform');
  expect(response?.status()).toBe(403);
});

test("a lead's home shows the team's budget burn and forecast, its secrets and its delivery trend", async ({ page }) => {
  await signIn(page, user('lee'), '/');
  await expect(page.getByRole('heading', { name: 'Team payments this month' })).toBeVisible();
  await expect(page.getByTestId('lead-burn')).toContainText(/LLM spend \$[\d,.]+ of \$[\d,.]+ per month/);
  await expect(page.getByRole('progressbar', { name: /% of the budget used/ })).toBeVisible();
  await expect(page.getByTestId('lead-forecast')).toContainText(/At this pace \$[\d,.]+ by the end of the period/);
  await expect(page.getByTestId('lead-delivery')).toContainText('Deploys per week');
  await expect(page.getByTestId('lead-secrets')).toBeVisible();
  await page.getByRole('link', { name: 'Outcomes', exact: true }).click();
  await expect(page).toHaveURL(/\/teams\/payments\/outcomes$/);
});
