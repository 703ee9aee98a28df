import { expect, test } from './fixtures';
import { BASE, signIn, user, hydrated } from './helpers';

test('a personal API token is shown once, works as a bearer token, and stops working when revoked', async ({ page, playwright }) => {
  await signIn(page, user('lee'));
  await hydrated(page);
  await page.getByTestId('user-name').click();
  await expect(page).toHaveURL(/\/profile$/);
  await hydrated(page);
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

// A contractor leaves: a platform admin revokes their token on the access
// page, then disables them. Their open session stops at once, and signing in
// again is refused until an admin enables them.
test('a platform admin revokes anyone’s token and disables a person, whose session stops at once', async ({ browser, playwright }) => {
  const kimContext = await browser.newContext();
  const kim = await kimContext.newPage();
  await signIn(kim, user('kim'), '/profile');
  await hydrated(kim);
  await kim.getByLabel('Token name').fill('laptop');
  await kim.getByRole('button', { name: 'Create token' }).click();
  const shown = kim.getByTestId('new-token').locator('code');
  await expect(shown).toContainText('pvd_');
  const token = (await shown.textContent())!.trim();
  const api = await playwright.request.newContext({ baseURL: BASE });
  const bearer = { headers: { Authorization: `Bearer ${token}` } };
  expect((await api.get('/api/v1/me', bearer)).status()).toBe(200);

  const adminContext = await browser.newContext();
  const admin = await adminContext.newPage();
  await signIn(admin, user('ada'), '/');
  await hydrated(admin);
  await admin.getByRole('link', { name: 'Access', exact: true }).click();
  await expect(admin).toHaveURL(/\/admin\/access$/);
  await expect(admin.getByRole('heading', { name: 'People and access' })).toBeVisible();
  await hydrated(admin);
  const row = admin.getByTestId('person-row').filter({ hasText: 'Kim Contractor' });
  await expect(row.getByTestId('person-token')).toContainText('laptop');
  await row.getByRole('button', { name: 'Revoke token laptop of Kim Contractor' }).click();
  await expect(admin.getByRole('status').getByText('Token revoked.')).toBeVisible();
  await expect(row.getByTestId('person-token')).toHaveCount(0);
  expect((await api.get('/api/v1/me', bearer)).status()).toBe(401);

  // Admins cannot lock themselves out.
  const self = admin.getByTestId('person-row').filter({ hasText: 'Ada Admin' });
  await self.getByRole('button', { name: 'Disable Ada Admin' }).click();
  await expect(admin.getByRole('alert')).toContainText('you cannot disable yourself');

  await row.getByRole('button', { name: 'Disable Kim Contractor' }).click();
  await expect(admin.getByRole('status').getByText('Disabled: their sessions and tokens stopped working.')).toBeVisible();
  await expect(row).toContainText('disabled');
  await kim.goto('/profile');
  await expect(kim).toHaveURL(/\/signin/);
  await kim.getByRole('link', { name: 'Sign in with your company account' }).click();
  // Whether or not the provider still remembers Kim, Paved refuses the sign-in.
  const refused = kim.getByText('Your Paved account has been disabled by a platform admin.');
  await expect(refused.or(kim.getByLabel('Username'))).toBeVisible();
  if (!(await refused.isVisible())) {
    await kim.getByLabel('Username').fill('kim');
    await kim.getByLabel('Password').fill(user('kim').password);
    await kim.getByRole('button', { name: 'Sign in' }).click();
  }
  await expect(refused).toBeVisible();

  await row.getByRole('button', { name: 'Enable Kim Contractor' }).click();
  await expect(admin.getByRole('status').getByText('Enabled: they can sign in again.')).toBeVisible();
  await expect(row).not.toContainText('disabled');
  await kimContext.close();
  await adminContext.close();
});

test('the access page is for platform admins only', async ({ page }) => {
  await signIn(page, user('lee'), '/admin/access');
  await expect(page.getByText('Only platform admins can do this.')).toBeVisible();
  await expect(page.getByTestId('person-row')).toHaveCount(0);
  await expect(page.getByRole('link', { name: 'Access', exact: true })).toHaveCount(0);
});
