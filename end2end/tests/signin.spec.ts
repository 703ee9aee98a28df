import { expect, test } from './fixtures';
import { BASE, flowUntilCallback, signIn, signOut, user, hydrated } from './helpers';

const homes = [
  { username: 'dana', badge: 'Developer', teams: ['payments · member'], next: 'Find or create a service' },
  { username: 'lee', badge: 'Team lead', teams: ['payments · lead'], next: "Your team's LLM budget" },
  { username: 'sam', badge: 'Team lead', teams: ['search · lead'], next: "Your team's LLM budget" },
  { username: 'pat', badge: 'Platform PM', teams: [], next: 'Teams over the last 30 days' },
  { username: 'ada', badge: 'Platform admin', teams: [], next: 'Golden paths' },
];

for (const h of homes) {
  test(`${h.username} signs in, lands on their role's home page, sees their team, signs out`, async ({ page }) => {
    const u = user(h.username);
    await signIn(page, u);
    await expect(page).toHaveURL(/\/$/);
    await expect(page.getByRole('heading', { name: `Hi ${u.name.split(' ')[0]}` })).toBeVisible();
    const role = page.getByTestId('home-role');
    await expect(role.getByText(h.badge, { exact: true })).toBeVisible();
    await expect(page.getByRole('heading', { name: h.next, exact: true })).toBeVisible();
    for (const t of h.teams) await expect(role.getByText(t)).toBeVisible();

    for (const t of h.teams) {
      const team = t.split(' ')[0];
      await page.getByRole('navigation', { name: 'Main' }).first().getByRole('link', { name: `Team ${team}` }).click();
      await expect(page).toHaveURL(new RegExp(`/teams/${team}$`));
      await expect(page.getByRole('cell', { name: u.name })).toBeVisible();
    }

    await signOut(page);
    await page.goto('/');
    await expect(page).toHaveURL(/\/signin/);
  });
}

test('a person with no mapped group is told to ask the platform team', async ({ page }) => {
  await signIn(page, user('nick'));
  await expect(page.getByText("You're signed in, but not on a team yet")).toBeVisible();
  await expect(page.getByText('Ask your platform team to add you')).toBeVisible();
});

test('sign-in returns to the page first asked for', async ({ page }) => {
  await signIn(page, user('dana'), '/teams/payments');
  await expect(page).toHaveURL(/\/teams\/payments$/);
  await expect(page.getByRole('heading', { name: 'Payments' })).toBeVisible();
});

test('a wrong password is refused by the provider and nobody is signed in', async ({ page, request }) => {
  await page.goto('/signin');
  await page.getByRole('link', { name: 'Sign in with your company account' }).click();
  await page.getByLabel('Username').fill('dana');
  await page.getByLabel('Password').fill('not-her-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toHaveText('Wrong username or password.');
  expect((await request.get('/api/v1/me')).status()).toBe(401);
});

test('sign-in gives the session a new id', async ({ page, context }) => {
  await page.goto('/signin');
  await page.getByRole('link', { name: 'Sign in with your company account' }).click();
  await expect(page.getByLabel('Username')).toBeVisible();
  const before = (await context.cookies(BASE)).find((c) => c.name === 'paved_session');
  expect(before, 'starting sign-in stores state and nonce in a session').toBeTruthy();
  expect(before!.httpOnly).toBe(true);
  expect(before!.sameSite).toBe('Lax');
  await page.getByLabel('Username').fill('dana');
  await page.getByLabel('Password').fill(user('dana').password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Hi Dana' })).toBeVisible();
  const after = (await context.cookies(BASE)).find((c) => c.name === 'paved_session');
  expect(after!.value).not.toBe(before!.value);
});

test('a tampered state at the callback gives a clear error and no session', async ({ playwright }) => {
  // Walk the real flow redirect by redirect, stopping before Paved's callback.
  const http = await playwright.request.newContext({ baseURL: BASE, maxRedirects: 0 });
  const callback = await flowUntilCallback(http, user('dana'));
  expect(callback).toMatch(/[?&]code=[^&]+/);
  expect(callback).toMatch(/[?&]state=[^&]+/);
  const tampered = new URL(callback);
  tampered.searchParams.set('state', 'forged-state');

  const refused = await http.get(tampered.toString(), { maxRedirects: 0 });
  expect(refused.status()).toBe(303);
  expect(refused.headers()['location']).toBe('/signin?error=state_mismatch');
  expect((await http.get('/api/v1/me')).status()).toBe(401);

  // The genuine callback cannot be replayed after the failed attempt either.
  const replay = await http.get(callback, { maxRedirects: 0 });
  expect(replay.headers()['location']).toBe('/signin?error=state_mismatch');
  expect((await http.get('/api/v1/me')).status()).toBe(401);
});

test('the sign-in page explains a failed sign-in', async ({ page }) => {
  await page.goto('/signin?error=state_mismatch');
  await expect(page.getByTestId('signin-error')).toContainText('nobody was signed in');
  await page.goto('/signin?error=client_rejected');
  await expect(page.getByTestId('signin-error')).toContainText('PAVED_OIDC_CLIENT_SECRET');
});

test('hydration: the dark-mode toggle works in the browser', async ({ page }) => {
  await signIn(page, user('dana'));
  await hydrated(page);
  const toggle = page.getByTestId('theme-toggle');
  const html = page.locator('html');
  const wasDark = (await html.getAttribute('class'))?.includes('dark') ?? false;
  await toggle.click();
  await expect(toggle).toHaveAttribute('aria-pressed', String(!wasDark));
  if (wasDark) await expect(html).not.toHaveClass(/dark/);
  else await expect(html).toHaveClass(/dark/);
  // The choice is remembered across page loads.
  await page.reload();
  await expect.poll(() => page.evaluate(() => document.documentElement.classList.contains('dark'))).toBe(!wasDark);
});

test('a developer opening the audit log sees the 403 page', async ({ page }) => {
  await signIn(page, user('dana'));
  await expect(page.getByRole('heading', { name: 'Hi Dana' })).toBeVisible();
  const response = await page.goto('/admin/audit');
  expect(response!.status()).toBe(403);
  await expect(page.getByRole('heading', { name: "You don't have access" })).toBeVisible();
  await expect(page.getByText('The audit log is only open to platform admins.')).toBeVisible();
});

test('an admin sees their own change in the audit log, with who and what', async ({ page }) => {
  await signIn(page, user('ada'));
  await hydrated(page);
  await page.getByTestId('user-name').click();
  await expect(page).toHaveURL(/\/profile$/);
  await hydrated(page);
  const name = `audit-check-${Date.now()}`;
  await page.getByLabel('Token name').fill(name);
  await page.getByRole('button', { name: 'Create token' }).click();
  await expect(page.getByTestId('new-token')).toBeVisible();
  await page.getByRole('navigation', { name: 'Main' }).first().getByRole('link', { name: 'Audit log', exact: true }).click();
  await expect(page.getByRole('heading', { name: 'Audit log' })).toBeVisible();
  const row = page.getByRole('row').filter({ hasText: name });
  await expect(row.getByRole('cell', { name: 'user:ada' })).toBeVisible();
  await expect(row.getByRole('cell', { name: 'token.create' })).toBeVisible();
});

test('an unknown page answers 404 with a way home', async ({ page }) => {
  await signIn(page, user('dana'));
  await expect(page.getByRole('heading', { name: 'Hi Dana' })).toBeVisible();
  const response = await page.goto('/no/such/page');
  expect(response!.status()).toBe(404);
  await expect(page.getByRole('link', { name: 'Go home' })).toBeVisible();
});

test('a team page of another team is refused', async ({ page }) => {
  await signIn(page, user('dana'));
  await expect(page.getByRole('heading', { name: 'Hi Dana' })).toBeVisible();
  const response = await page.goto('/teams/search');
  expect(response!.status()).toBe(403);
  await expect(page.getByText('You are not a member of team search.')).toBeVisible();
});
