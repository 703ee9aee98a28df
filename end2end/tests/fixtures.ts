import { expect, test as base } from '@playwright/test';

/**
 * Every browser test runs under Paved's Content-Security-Policy with a
 * listener for violations on every page it opens: a test fails if the
 * policy blocked anything (an inline script without the nonce, an inline
 * handler, a foreign resource), so hydration is proven to work under it.
 */
export const test = base.extend<{ cspViolations: string[] }>({
  cspViolations: [
    async ({ page }, use) => {
      const violations: string[] = [];
      await page.exposeFunction('__pavedCspViolation', (report: string) => {
        violations.push(report);
      });
      await page.addInitScript(() => {
        document.addEventListener('securitypolicyviolation', (e) => {
          // eslint-disable-next-line @typescript-eslint/no-explicit-any
          (window as any).__pavedCspViolation(
            `${e.violatedDirective} blocked ${e.blockedURI || 'inline'} on ${location.pathname}`,
          );
        });
      });
      await use(violations);
      expect(violations, 'Content-Security-Policy violations').toEqual([]);
    },
    { auto: true },
  ],
});

export { expect };
