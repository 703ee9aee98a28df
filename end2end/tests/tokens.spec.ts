import { expect, test } from './fixtures';
import { BASE, signIn, user, hydrated } from './helpers';

test('a personal API token is shown once, works as a bearer token, and stops working when revoked', async ({ page, playwright }) => {
  await signIn(page, user('lee'));
  await hydrated(page);
  await page.getByTestId('user-name').click();
  await expect(page).toHaveURL(/\/profile$/);
  await expect(page.getByText('No API tokens yet')).toBeVisible();

  // Inline validation from the server: an empty-after-trim name.
  await page.getByLabel('Token name').fill('   ');
  await page.getByRole('button', { name: 'Create token' }).click();
  await expect(page.locator('#token-name-error')).toContainText('give the token a name');

  await page.getByLabel('Token name').fill('ci pipeline');
  await page.getByRole('button', { name: 'Create token' }).click();
  const shown = page.getByTestId('new-token').locator('code');
  await expect(shown).toContainText('pvd_');
  const token = (await shown.textContent())!.trim();
  await expect(page.getByRole('status').getByText('Token “ci pipeline” created')).toBeVisible();
  await expect(page.getByTestId('token-row')).toHaveCount(1);

  const api = await playwright.request.newContext({ baseURL: BASE });
  const me = await api.get('/api/v1/me', { headers: { Authorization: `Bearer ${token}` } });
  expect(me.status()).toBe(200);
  const body = await me.json();
  expect(body.subject).toBe('lee');
  expect(body.auth_method).toBe('personal_token');
  expect(body.teams).toEqual([{ team: 'payments', role: 'lead' }]);

  // The same name twice is a clear conflict.
  await page.getByLabel('Token name').fill('ci pipeline');
  await page.getByRole('button', { name: 'Create token' }).click();
  await expect(page.locator('#token-name-error')).toContainText('already have a token named');

  await page.reload();
  await expect(page.getByTestId('new-token')).toHaveCount(0);
  await expect(page.getByText(token)).toHaveCount(0);
  await hydrated(page);
  await page.getByRole('button', { name: 'Revoke token ci pipeline' }).click();
  await expect(page.getByRole('status').getByText('Token revoked.')).toBeVisible();
  await expect(page.getByText('revoked', { exact: true })).toBeVisible();
  const after = await api.get('/api/v1/me', { headers: { Authorization: `Bearer ${token}` } });
  expect(after.status()).toBe(401);
});
