import { expect, test } from './fixtures';
import { hydrated, signIn, user } from './helpers';

test('an admin sees the git hosts and tests the connection to GitHub', async ({ page }) => {
  await signIn(page, user('ada'));
  await page.getByRole('navigation', { name: 'Main' }).first().getByRole('link', { name: 'Git hosts' }).click();
  await expect(page.getByRole('heading', { name: 'Git hosts' })).toBeVisible();
  const row = page.getByTestId('integration-row').filter({ hasText: 'github.com' });
  await expect(row).toContainText('token at git/github.com in Vault');
  await expect(row).not.toContainText('e2e-github-token');
  await hydrated(page);
  await row.getByRole('button', { name: 'Test connection to github.com' }).click();
  await expect(row.getByTestId('connection-result')).toContainText('Connected to github.com');
  await expect(row.getByTestId('connection-result')).toContainText('The token expires on');
  // GitHub said when the token expires: the page warns, days ahead.
  await page.reload();
  await expect(page.getByTestId('integration-row').filter({ hasText: 'github.com' }).getByTestId('token-expiry')).toContainText('Token expires');
});

test('a developer is not shown the git hosts page', async ({ page }) => {
  await signIn(page, user('dana'));
  await expect(page.getByRole('navigation', { name: 'Main' }).first().getByRole('link', { name: 'Git hosts' })).toHaveCount(0);
  const response = await page.goto('/admin/integrations');
  expect(response?.status()).toBe(403);
});
