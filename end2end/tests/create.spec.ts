import { expect, test } from './fixtures';
import { signIn, user, hydrated } from './helpers';

const service = `wiz-${Date.now().toString(36)}`;
const gatewayKey = `gk-${Math.random().toString(36).slice(2)}-secret`;

test('a developer completes the wizard for the Rust service, watches the live log and opens the new entity', async ({ page }) => {
  await signIn(page, user('dana'), '/create');
  await hydrated(page);
  const cards = page.getByTestId('template-card');
  await expect(cards).toHaveCount(3);
  await cards.filter({ hasText: 'Rust' }).getByRole('link', { name: /^Choose/ }).click();
  await expect(page).toHaveURL(/\/create\/templates\/default\/rust-axum-service$/);
  await hydrated(page);

  // Page 1: live validation with the server's rules, owner limited to my teams.
  const name = page.getByLabel('Name *');
  await name.fill('Bad Name');
  await name.blur();
  await expect(page.getByText('use lowercase letters and digits')).toBeVisible();
  await name.fill(service);
  await expect(page.getByText('use lowercase letters and digits')).toHaveCount(0);
  await page.getByLabel('Description *').fill('Summarizes tickets for the wizard test');
  const owner = page.getByLabel('Owner *');
  await expect(owner.locator('option')).toHaveText(['Choose…', 'Team payments']);
  await owner.selectOption({ label: 'Team payments' });
  await page.getByLabel('System').selectOption({ index: 1 });
  await page.getByRole('button', { name: 'Next' }).click();

  // Page 2: a conditional field appears and disappears; the key is a password field.
  const model = page.getByLabel('Model *');
  await model.selectOption({ index: 3 });
  await expect(page.locator('[data-path="customModel"]')).toBeVisible();
  await model.selectOption({ index: 1 });
  await expect(page.locator('[data-path="customModel"]')).toHaveCount(0);
  await page.locator('[data-path="gatewayKey"] input').fill(gatewayKey);
  await page.getByRole('button', { name: 'Next' }).click();

  // Page 3: the repository.
  const repo = page.locator('[data-path="repoUrl"]');
  await repo.getByLabel('Owner', { exact: true }).fill('payments');
  await repo.getByLabel('Repository', { exact: true }).fill(service);

  // A reload keeps the answers (never the secret).
  await page.reload();
  await hydrated(page);
  await expect(page.locator('[data-path="repoUrl"]').getByLabel('Repository', { exact: true })).toHaveValue(service);
  await page.getByRole('button', { name: 'Back' }).click();
  await expect(page.locator('[data-path="gatewayKey"] input')).toHaveValue('');
  await page.locator('[data-path="gatewayKey"] input').fill(gatewayKey);
  await page.getByRole('button', { name: 'Back' }).click();
  await expect(page.getByLabel('Name *')).toHaveValue(service);
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByRole('button', { name: 'Review' }).click();

  // Review: the secret is masked; the dry run previews the files.
  const review = page.getByTestId('wizard-review');
  await expect(review).toContainText(service);
  await expect(review).toContainText('••••••••');
  await expect(review).not.toContainText(gatewayKey);
  await review.getByRole('button', { name: 'Preview files (dry run)' }).click();
  const files = page.getByTestId('dry-run-files');
  await expect(files).toContainText('catalog-info.yaml');
  await expect(files).toContainText('k8s/deployment.yaml');
  await files.getByRole('button', { name: 'catalog-info.yaml' }).click();
  await expect(page.getByTestId('dry-run-file')).toContainText(`name: "${service}"`);

  await review.getByRole('button', { name: 'Create' }).click();
  await expect(page).toHaveURL(/\/create\/tasks\/[0-9a-f-]+$/);
  await expect(page.getByTestId('task-status')).toContainText('completed', { timeout: 30_000 });
  const log = page.getByTestId('task-log');
  await expect(log).toContainText('Published');
  await expect(log).toContainText('Registered component:default/' + service);
  expect(await page.content()).not.toContain(gatewayKey);
  await page.getByTestId('task-output').getByRole('link', { name: 'Open in catalog' }).click();
  await expect(page).toHaveURL(new RegExp(`/catalog/component/default/${service}$`));
  await expect(page.getByRole('heading', { name: service })).toBeVisible();
  // The gateway key went to Vault with the service's annotations.
  await expect(page.getByTestId('secrets-panel')).toContainText('llm-gateway');

  // The team was notified in the portal.
  await page.getByTestId('notifications-link').click();
  await hydrated(page);
  const note = page.getByTestId('notification').filter({ hasText: `New service ${service}` });
  await expect(note).toContainText('new');
  await note.getByRole('button', { name: 'Mark read' }).click();
  await expect(note.getByText('new', { exact: true })).toHaveCount(0);
});
