import { APIRequestContext, expect, Page } from '@playwright/test';
export const BASE = process.env.PAVED_URL || 'http://127.0.0.1:3000';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export type DemoUser = { username: string; password: string; name: string; email: string; groups: string[]; role: string };

export const users: DemoUser[] = JSON.parse(
  readFileSync(fileURLToPath(new URL('../../demo/users.json', import.meta.url)), 'utf8'),
);

export const user = (username: string): DemoUser => {
  const u = users.find((x) => x.username === username);
  if (!u) throw new Error(`no demo user ${username}`);
  return u;
};

/** Signs in through the provider's own form, starting from `path`. */
export async function signIn(page: Page, u: DemoUser, path = '/') {
  await page.goto(path);
  await expect(page).toHaveURL(/\/signin/);
  await page.getByRole('link', { name: 'Sign in with your company account' }).click();
  await expect(page.getByRole('heading', { name: 'Demo identity provider' })).toBeVisible();
  await page.getByLabel('Username').fill(u.username);
  await page.getByLabel('Password').fill(u.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Waits until the Leptos bundle has hydrated the page. */
export async function hydrated(page: Page) {
  await page.locator('html[data-hydrated]').waitFor({ state: 'attached' });
}

export async function signOut(page: Page) {
  await page.getByRole('button', { name: 'Sign out' }).click();
  // The provider asks to confirm its own sign-out, then returns to Paved.
  await page.getByRole('button', { name: 'Yes, sign me out' }).click();
  await expect(page).toHaveURL(/\/signin\?signed_out=1/);
  await expect(page.getByText('You have signed out.')).toBeVisible();
}

/**
 * Runs the authorization-code flow over HTTP, one redirect at a time, through
 * the provider's sign-in form, and returns Paved's callback URL (with code and
 * state) without calling it.
 */
export async function flowUntilCallback(http: APIRequestContext, u: DemoUser): Promise<string> {
  let response = await http.get('/auth/login', { maxRedirects: 0 });
  let location = response.headers()['location'];
  for (let hop = 0; hop < 10; hop++) {
    if (!location) throw new Error(`no redirect at hop ${hop}: ${response.status()}`);
    if (location.startsWith(BASE) && location.includes('/auth/callback')) return location;
    response = await http.get(location, { maxRedirects: 0 });
    if (response.status() === 200 && (await response.text()).includes('name="password"')) {
      const action = (await response.text()).match(/action="([^"]+)"/)![1];
      const issuer = new URL(location).origin;
      response = await http.post(issuer + action, {
        form: { username: u.username, password: u.password },
        maxRedirects: 0,
      });
    }
    location = response.headers()['location'];
    if (location && location.startsWith('/')) location = new URL(response.url()).origin + location;
  }
  throw new Error('too many redirects');
}

/**
 * Starts a scaffolder task from the static-site golden path through the
 * scaffolder API, as the signed-in user of `page` (a payments member), and
 * returns its id: for tests that need a task page without walking the wizard.
 */
export async function startSiteTask(page: Page, prefix: string): Promise<string> {
  const site = `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
  const created = await page.request.post('/api/scaffolder/v2/tasks', {
    headers: { Origin: BASE },
    data: {
      templateRef: 'template:default/static-site',
      values: {
        name: site,
        description: `A site for ${prefix}`,
        owner: 'group:default/payments',
        lifecycle: 'experimental',
        repoUrl: `git.paved.demo?owner=payments&repo=${site}`,
      },
    },
  });
  expect(created.status(), await created.text()).toBe(201);
  return (await created.json()).id;
}
