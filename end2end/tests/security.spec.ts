import { expect, test } from './fixtures';
import { execFileSync } from 'node:child_process';
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

// Ingestion refuses `javascript:` links (a catalog problem naming the field),
// so such a link can only be in the database from before that rule or from a
// direct write. Wherever one is, the entity page shows it as text: nothing a
// viewer can click runs script.
test('a javascript: catalog link is shown as text, not as a link', async ({ page }) => {
  const db = process.env.PAVED_E2E_DATABASE;
  expect(db, 'scripts/test.sh names the browser suite database').toBeTruthy();
  const links = JSON.stringify([
    { url: 'javascript:alert(1)', title: 'Runbook' },
    { url: 'https://docs.example.com/search', title: 'Docs' },
  ]);
  execFileSync('python3', ['-c', `
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=30)
done = db.execute("UPDATE catalog_entities SET body = json_set(body, '$.metadata.links', json(?)) WHERE entity_ref = 'api:default/product-search'", (sys.argv[2],)).rowcount
db.commit()
assert done == 1, done
`, db!, links]);
  await signIn(page, user('lee'), '/catalog/api/default/product-search');
  await hydrated(page);
  const unsafe = page.getByTestId('unsafe-link');
  await expect(unsafe).toContainText('Runbook');
  await expect(unsafe).toContainText('javascript:alert(1)');
  await expect(page.locator('a[href^="javascript"]')).toHaveCount(0);
  await expect(page.getByRole('link', { name: 'Runbook' })).toHaveCount(0);
  await expect(page.getByRole('link', { name: 'Docs' })).toHaveAttribute('href', 'https://docs.example.com/search');
});
