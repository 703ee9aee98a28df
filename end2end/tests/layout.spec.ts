import { expect, test } from './fixtures';
import { signIn, user, hydrated } from './helpers';

test('at 375 px the navigation sits behind a menu button', async ({ page }) => {
  await page.setViewportSize({ width: 375, height: 800 });
  await signIn(page, user('ada'));
  await hydrated(page);
  const menu = page.getByRole('button', { name: 'Menu' });
  await expect(menu).toBeVisible();
  await expect(page.locator('#mobile-nav')).toBeHidden();
  await menu.click();
  await expect(menu).toHaveAttribute('aria-expanded', 'true');
  await expect(page.locator('#mobile-nav').getByRole('link', { name: 'Audit log' })).toBeVisible();
  // Nothing overflows sideways.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
});

test('at 1440 px the navigation is always shown', async ({ page }) => {
  await page.setViewportSize({ width: 1440, height: 900 });
  await signIn(page, user('ada'));
  await expect(page.getByRole('button', { name: 'Menu' })).toBeHidden();
  await expect(page.getByRole('navigation', { name: 'Main' }).first().getByRole('link', { name: 'Audit log' })).toBeVisible();
});
