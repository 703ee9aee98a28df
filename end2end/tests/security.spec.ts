import { expect, test } from './fixtures';
import { hydrated, signIn, user } from './helpers';

// Each page a person opens carries a Content-Security-Policy with a fresh
// nonce and no inline scripts allowed otherwise; islands hydrate under it
// (the fixture fails the test on any violation).
test('every page is served under a strict Content-Security-Policy and still hydrates', async ({ page }) => {
  await signIn(page, user('lee'), '/');
  await hydrated(page);
  const nonces = new Set<string>();
  for (const path of ['/', '/catalog', '/catalog/component/default/payments-api', '/create', '/teams/payments/budget', '/profile']) {
    const response = await page.goto(path);
    expect(response, path).not.toBeNull();
    const csp = response!.headers()['content-security-policy'] ?? '';
    const scriptSrc = csp.split(';').find((d) => d.trim().startsWith('script-src')) ?? '';
    expect(scriptSrc, path).toMatch(/'nonce-[A-Za-z0-9_-]{16,}'/);
    expect(scriptSrc, path).not.toContain('unsafe-inline');
    expect(csp, path).toContain("object-src 'none'");
    expect(csp, path).toContain("frame-ancestors 'none'");
    nonces.add(scriptSrc);
    await hydrated(page);
  }
  expect(nonces.size, 'a fresh nonce per page').toBe(6);
  // The islands respond under the policy.
  const before = await page.locator('html').getAttribute('class');
  await page.getByTestId('theme-toggle').first().click();
  await expect.poll(() => page.locator('html').getAttribute('class')).not.toBe(before);
});
