import { expect, test } from './fixtures';
import { signIn, user } from './helpers';

test('a team lead opens Outcomes, follows lead time to the changes behind it and sees why a deployment is rework', async ({ page }) => {
  await signIn(page, user('lee'), '/teams/payments');
  await page.getByTestId('outcomes-link').click();
  await expect(page).toHaveURL(/\/teams\/payments\/outcomes$/);
  await expect(page.getByRole('heading', { name: 'Delivery outcomes' })).toBeVisible();

  // The five keys, each with a value, and the demo's history gives them data.
  const keys = page.getByTestId('dora-keys');
  for (const id of ['deployment-frequency', 'lead-time', 'change-failure-rate', 'recovery-time', 'rework-rate']) {
    await expect(keys.getByTestId(id)).toBeVisible();
  }
  const lead = keys.getByTestId('lead-time');
  await expect(lead.getByTestId('value')).not.toHaveText('No data');
  await expect(lead.getByRole('img')).toHaveAttribute('aria-label', /Lead time for changes per week over the last 12 weeks/);

  // Lead time → the changes it was computed from, each with why it counts.
  await lead.getByTestId('drill-down').click();
  await expect(page).toHaveURL(/list=changes/);
  const changes = page.getByTestId('changes');
  await expect(changes).toBeVisible();
  await expect(changes.locator('tbody tr').first()).toBeVisible();
  await expect(changes).toContainText(/the deployed commit|an ancestor of the deployed commit/);
  await expect(page.getByRole('link', { name: 'Changes', exact: true })).toHaveAttribute('aria-current', 'page');

  // The deployments list: the hotfix counts as rework, and says why.
  await page.getByRole('link', { name: 'Deployments', exact: true }).click();
  await expect(page).toHaveURL(/list=deployments/);
  const rework = page.getByTestId('deployments').getByTestId('rework').first();
  await expect(rework).toBeVisible();
  await expect(rework).toContainText(/made to fix incident INC-\d+/);
  const row = page.getByTestId('deployments').locator('tr', { has: page.getByTestId('rework') }).first();
  await expect(row).toContainText('Hotfix for INC-');
});

test('a component page shows its outcomes in brief, and a window without events says how to send them', async ({ page }) => {
  await signIn(page, user('dana'), '/catalog/component/default/payments-api');
  await expect(page.getByTestId('outcomes-summary')).toBeVisible();
  await page.getByRole('link', { name: /Open the outcomes/ }).click();
  await expect(page).toHaveURL(/\/catalog\/component\/default\/payments-api\/outcomes$/);
  await expect(page.getByTestId('dora-keys')).toBeVisible();

  // Before the demo's history began.
  await page.goto('/catalog/component/default/checkout-web/outcomes?from=2020-01-01&to=2020-02-01');
  const empty = page.getByTestId('no-events');
  await expect(empty).toContainText('No delivery events reached component checkout-web by the end of this window');
  await expect(empty).toContainText('/api/events/v1/github');
  await expect(empty).toContainText('curl -X POST');
});
