import { expect, test } from './fixtures';
import { hydrated, signIn, user } from './helpers';

// The portal reads a recorded cluster (kube-stub, started by the test
// command with end2end/kube/) as `prod-eu`, and `edge-west` points at a
// port where nothing listens.

test('a service page shows a crash-looping pod with its detector, suggested fix and previous logs', async ({ page }) => {
  await signIn(page, user('dana'), '/catalog/component/default/payments-api');
  await hydrated(page);
  const runtime = page.getByTestId('runtime');
  const cluster = runtime.getByTestId('runtime-cluster').filter({ hasText: 'prod-eu' });
  await expect(cluster).toContainText('prod-eu · payments');
  const crash = cluster.locator('[data-testid="runtime-problem"][data-code="CrashLoopBackOff"]');
  await expect(crash).toContainText('CrashLoopBackOff');
  await expect(crash).toContainText('and 2 more like it');
  await expect(crash).toContainText('Suggested fix');
  await expect(cluster.locator('[data-testid="runtime-problem"][data-code="DeploymentCondition"]')).toBeVisible();
  await expect(cluster.getByTestId('runtime-pod')).toHaveCount(3);
  // The owning team reads the crashed run's logs and the events.
  await cluster.getByRole('button', { name: 'Previous run' }).first().click();
  await expect(cluster.getByTestId('runtime-logs')).toContainText('PAYMENTS_LEDGER_URL is not set');
  await cluster.getByText(/Recent events/).click();
  await expect(cluster.getByTestId('runtime-events')).toContainText('Back-off restarting failed container');
});

test('another team sees the workload summary without logs or events', async ({ page }) => {
  await signIn(page, user('sid'), '/catalog/component/default/payments-api');
  const cluster = page.getByTestId('runtime-cluster').filter({ hasText: 'prod-eu' });
  await expect(cluster.getByTestId('runtime-pod')).toHaveCount(3);
  await expect(cluster.getByRole('button', { name: 'Logs' })).toHaveCount(0);
  await expect(cluster.getByTestId('runtime-events')).toHaveCount(0);
});

test('an unreachable cluster shows a clear state, on the service page and for admins', async ({ page }) => {
  await signIn(page, user('dana'), '/catalog/component/default/checkout-web');
  const cluster = page.getByTestId('runtime-cluster').filter({ hasText: 'edge-west' });
  await expect(cluster).toContainText('unreachable');
  await expect(cluster.getByTestId('runtime-message')).toContainText('edge-west cannot be reached');
});

test('admins see each cluster and whether it answers', async ({ page }) => {
  await signIn(page, user('ada'), '/');
  await page.getByRole('link', { name: 'Clusters' }).first().click();
  await expect(page).toHaveURL(/\/admin\/clusters$/);
  await expect(page.locator('[data-testid="cluster-row"][data-state="ok"]')).toContainText('prod-eu');
  await expect(page.locator('[data-testid="cluster-row"][data-state="ok"]')).toContainText('production');
  const down = page.locator('[data-testid="cluster-row"][data-state="unreachable"]');
  await expect(down).toContainText('edge-west');
  await expect(down).toContainText('unreachable');
});
