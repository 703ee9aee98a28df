import { expect, test } from './fixtures';
import { signIn, user, hydrated } from './helpers';

// A fresh secret name per run, so reruns against the same server never clash.
const name = `db-${Date.now().toString(36)}`;
const firstValue = `first-${Math.random().toString(36).slice(2)}`;
const secondValue = `second-${Math.random().toString(36).slice(2)}`;

test('a developer adds a secret to their service, sees the annotations, rotates it; values never come back', async ({ page }) => {
  await signIn(page, user('dana'), '/catalog/component/default/payments-api');
  await hydrated(page);
  const panel = page.getByTestId('secrets-panel');
  await expect(panel).toBeVisible();

  await panel.getByRole('button', { name: 'Add secret' }).click();
  // Live validation while typing, before anything is sent.
  await panel.getByLabel('Name').fill('Bad Name');
  await expect(panel.getByText('Use 1 to 40 lowercase letters')).toBeVisible();
  await panel.getByLabel('Name').fill(name);
  await panel.getByLabel('Key', { exact: true }).first().fill('DATABASE-URL');
  await expect(panel.getByText('Letters, digits and _')).toBeVisible();
  await panel.getByLabel('Key', { exact: true }).first().fill('DATABASE_URL');
  await panel.getByLabel('Value', { exact: true }).first().fill(firstValue);
  await panel.getByRole('button', { name: 'Add another key' }).click();
  await panel.getByLabel('Key', { exact: true }).nth(1).fill('DATABASE_USER');
  await panel.getByLabel('Value', { exact: true }).nth(1).fill('payments');
  await panel.getByRole('button', { name: 'Save to Vault' }).click();

  const steps = panel.getByTestId('secret-steps');
  await expect(steps).toContainText(`Created ${name} (version 1)`);
  await expect(steps).toContainText('Write the read-only Vault policy');
  await expect(steps).toContainText('Bind the Kubernetes service account');
  await expect(steps.getByText('failed')).toHaveCount(0);
  const row = panel.getByTestId('secret-row').filter({ hasText: name });
  await expect(row).toContainText('v1');
  await expect(row).toContainText(`secret/data/platform/payments/payments-api/${name}`);

  const annotations = panel.getByTestId('injector-annotations');
  await expect(annotations).toContainText('vault.hashicorp.com/agent-inject: "true"');
  await expect(annotations).toContainText('vault.hashicorp.com/role: "paved__payments__payments-api"');
  await expect(annotations).toContainText(`vault.hashicorp.com/agent-inject-secret-${name}: "secret/data/platform/payments/payments-api/${name}"`);
  await expect(panel.getByTestId('secret-access')).toContainText('payments/payments-api');
  await expect(panel.getByTestId('secret-access')).toContainText('in place');

  // The form is gone and nothing on the page holds the value: not the HTML, not any input.
  await expect(panel.getByTestId('secret-form')).toHaveCount(0);
  expect(await page.content()).not.toContain(firstValue);
  expect(await page.$$eval('input', (els) => els.map((e) => (e as HTMLInputElement).value))).not.toContain(firstValue);

  // Rotate: a new version; the versions list shows metadata only.
  await row.getByRole('button', { name: `Rotate ${name}` }).click();
  await expect(panel.getByText(`Rotate ${name} (replaces version 1`)).toBeVisible();
  await panel.getByLabel('Key', { exact: true }).first().fill('DATABASE_URL');
  await panel.getByLabel('Value', { exact: true }).first().fill(secondValue);
  await panel.getByRole('button', { name: 'Save to Vault' }).click();
  await expect(steps).toContainText(`Rotated ${name} (version 2)`);
  await expect(row).toContainText('v2');
  await row.getByRole('button', { name: `Versions of ${name}` }).click();
  const versions = panel.getByTestId('secret-versions');
  await expect(versions.getByText('Version 2')).toBeVisible();
  await expect(versions.getByText('Version 1')).toBeVisible();
  await expect(versions).toContainText('user:dana');
  // A developer cannot delete versions or destroy: only leads can.
  await expect(panel.getByRole('button', { name: /Delete version|Destroy/ })).toHaveCount(0);
  expect(await page.content()).not.toContain(secondValue);

  // After a reload the secret is listed with its annotations, still without values.
  await page.reload();
  await expect(panel.getByTestId('secret-row').filter({ hasText: name })).toContainText('v2');
  await expect(panel.getByTestId('injector-annotations')).toContainText(`agent-inject-secret-${name}`);
  const html = await page.content();
  expect(html).not.toContain(firstValue);
  expect(html).not.toContain(secondValue);
});

test("a developer of another team can't see the service's secrets", async ({ page }) => {
  await signIn(page, user('sid'), '/catalog/component/default/payments-api');
  await expect(page.getByRole('heading', { name: 'Payments API' })).toBeVisible();
  await expect(page.getByTestId('secrets-hidden')).toContainText('Only members of team payments');
  await expect(page.getByTestId('secrets-panel')).toHaveCount(0);
  await expect(page.getByText('secret/data/platform/payments')).toHaveCount(0);
  // Their own service's panel is there.
  await page.goto('/catalog/component/default/search-indexer');
  await expect(page.getByTestId('secrets-panel')).toBeVisible();
});

test('a team lead destroys a secret after typing its name', async ({ page }) => {
  const doomed = `tmp-${Date.now().toString(36)}`;
  await signIn(page, user('lee'), '/teams/payments');
  await hydrated(page);
  const panel = page.getByTestId('secrets-panel').first();
  await panel.getByRole('button', { name: 'Add secret' }).click();
  await panel.getByLabel('Name').fill(doomed);
  await panel.getByLabel('Key', { exact: true }).first().fill('TOKEN');
  await panel.getByLabel('Value', { exact: true }).first().fill('short-lived');
  await panel.getByRole('button', { name: 'Save to Vault' }).click();
  const row = panel.getByTestId('secret-row').filter({ hasText: doomed });
  await expect(row).toContainText(`secret/data/platform/payments/_team/${doomed}`);
  await row.getByRole('button', { name: `Destroy ${doomed}` }).click();
  const confirm = panel.getByRole('button', { name: 'Destroy all versions' });
  await expect(confirm).toBeDisabled();
  await panel.getByLabel(`Type ${doomed} to destroy`).fill(doomed);
  await confirm.click();
  await expect(panel.getByTestId('secret-row').filter({ hasText: doomed })).toHaveCount(0);
  await page.reload();
  await expect(page.getByTestId('secret-row').filter({ hasText: doomed })).toHaveCount(0);
});
