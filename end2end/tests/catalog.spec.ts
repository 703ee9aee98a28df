import { expect, test } from './fixtures';
import { fileURLToPath } from 'node:url';
import { signIn, user, hydrated } from './helpers';

// scripts/test.sh starts the server with this folder among PAVED_CATALOG_FILE_ROOTS.
const conformance = process.env.CONFORMANCE_DIR
  || fileURLToPath(new URL('../../../shared/conformance/backstage-catalog-examples', import.meta.url));

test('a developer searches the catalog, filters by owner, opens an entity and follows a relation', async ({ page }) => {
  await signIn(page, user('dana'));
  await expect(page.getByRole('heading', { name: 'Hi Dana' })).toBeVisible();
  await page.getByRole('navigation', { name: 'Main' }).first().getByRole('link', { name: 'Catalog' }).click();
  await expect(page.getByRole('heading', { name: 'Catalog', exact: true })).toBeVisible();

  await page.getByLabel('Search the catalog').fill('acquirer');
  await page.getByRole('button', { name: 'Search' }).click();
  await expect(page).toHaveURL(/\/catalog\?q=acquirer/);
  const rows = page.getByTestId('catalog-row');
  await expect(rows).toHaveCount(1);
  await expect(rows.first().locator('mark')).toHaveText('acquirer');

  await page.goto('/catalog');
  await page.getByRole('list', { name: 'Filter by Owner' }).getByRole('link', { name: /^search/ }).click();
  await expect(page).toHaveURL(/owner=group%3Adefault%2Fsearch/);
  await expect(rows).toHaveCount(2);
  await expect(page.getByRole('link', { name: 'Search indexer' })).toBeVisible();
  await expect(page.getByRole('link', { name: 'Payments API' })).toHaveCount(0);

  await page.goto('/catalog?q=payments');
  await page.getByRole('link', { name: 'Payments API' }).first().click();
  await expect(page).toHaveURL(/\/catalog\/(component|api)\/default\//);
  await page.goto('/catalog/component/default/payments-api');
  await expect(page.getByRole('heading', { name: 'Payments API' })).toBeVisible();
  await expect(page.getByRole('group', { name: 'Relations graph' })).toBeVisible();
  await page.getByTestId('relation-link').filter({ hasText: 'resource:default/ledger-db' }).click();
  await expect(page).toHaveURL(/\/catalog\/resource\/default\/ledger-db$/);
  await expect(page.getByRole('heading', { name: 'Ledger database' })).toBeVisible();
});

test('an API page shows its OpenAPI operations, read from a $text file', async ({ page }) => {
  await signIn(page, user('dana'), '/catalog/api/default/payments');
  const operations = page.getByRole('table', { name: 'Operations' });
  await expect(operations.getByRole('row').filter({ hasText: '/payments/{id}/capture' })).toContainText('Capture an authorised payment');
});

test('an admin registers a broken location and sees exactly what is wrong', async ({ page }) => {
  await signIn(page, user('ada'), '/catalog/locations');
  await hydrated(page);
  await page.getByLabel('Target').fill(`${conformance}/components/invalid-component.yaml`);
  await page.getByRole('button', { name: 'Register' }).click();
  const row = page.getByTestId('location-row').filter({ hasText: 'invalid-component.yaml' });
  await expect(row).toContainText('failed');
  await row.getByRole('link').click();
  const problem = page.getByTestId('problem-row').filter({ hasText: 'metadata.name' });
  await expect(problem).toContainText('`invalid component` is not a valid name');

  // Outside the configured roots: refused with a clear message, nothing registered.
  await page.goto('/catalog/locations');
  await hydrated(page);
  await page.getByLabel('Target').fill('/etc/passwd');
  await page.getByRole('button', { name: 'Register' }).click();
  await expect(page.locator('#location-target-error')).toContainText('outside the directories in PAVED_CATALOG_FILE_ROOTS');
});

test('a developer cannot register locations', async ({ page }) => {
  await signIn(page, user('dana'), '/catalog/locations');
  await expect(page.getByRole('heading', { name: 'Catalog locations' })).toBeVisible();
  await expect(page.getByLabel('Target')).toHaveCount(0);
  await expect(page.getByTestId('location-row').filter({ hasText: 'catalog/demo/all.yaml' })).toHaveCount(1);
});

test('an admin imports pasted YAML and sees its problems', async ({ page }) => {
  await signIn(page, user('ada'), '/catalog/locations');
  await hydrated(page);
  const name = `pasted-${Date.now()}`;
  await page.getByLabel('Import name').fill(name);
  await page.getByLabel('YAML').fill([
    'apiVersion: backstage.io/v1alpha1', 'kind: Component', `metadata: {name: ${name}, description: Pasted in the browser}`,
    'spec: {type: service, lifecycle: experimental, owner: payments}', '---',
    'apiVersion: backstage.io/v1alpha1', 'kind: Component', 'metadata: {name: "no good"}', 'spec: {type: service}',
  ].join('\n'));
  await page.getByRole('button', { name: 'Import' }).click();
  const result = page.getByTestId('import-result');
  await expect(result).toContainText('1 entities, ');
  await expect(result.getByTestId('problem-row').filter({ hasText: 'metadata.name' })).toContainText('`no good` is not a valid name');
  await page.goto(`/catalog/component/default/${name}`);
  await expect(page.getByText('Pasted in the browser', { exact: true })).toBeVisible();
});

test('starred entities gather in the starred view', async ({ page }) => {
  await signIn(page, user('sam'), '/catalog?starred=1');
  await expect(page.getByText('Nothing starred yet')).toBeVisible();
  await page.goto('/catalog/component/default/search-indexer');
  await hydrated(page);
  await page.getByRole('button', { name: '☆ Star' }).click();
  await expect(page.getByRole('button', { name: '★ Starred' })).toHaveAttribute('aria-pressed', 'true');
  await page.goto('/catalog?starred=1');
  await expect(page.getByTestId('catalog-row')).toHaveCount(1);
  await expect(page.getByRole('link', { name: 'Search indexer' })).toBeVisible();
});

test('a team lead keeps team notes on their service; another team cannot edit them', async ({ page, browser }) => {
  await signIn(page, user('lee'), '/catalog/component/default/checkout-web');
  await hydrated(page);
  await page.getByText('Edit team notes').click();
  await page.getByLabel('On call').fill('#payments-oncall');
  await page.getByLabel('Support link').fill('not a link');
  await page.getByRole('button', { name: 'Save notes' }).click();
  await expect(page.locator('#portal-support-error')).toContainText('http');
  await page.getByLabel('Support link').fill('https://help.paved.demo/payments');
  await page.getByRole('button', { name: 'Save notes' }).click();
  await expect(page.getByTestId('portal-fields')).toContainText('#payments-oncall');
  await page.reload();
  await expect(page.getByTestId('portal-fields')).toContainText('https://help.paved.demo/payments');

  const other = await browser.newPage();
  await signIn(other, user('sam'), '/catalog/component/default/checkout-web');
  await expect(other.getByTestId('portal-fields')).toContainText('#payments-oncall');
  await expect(other.getByText('Edit team notes')).toHaveCount(0);
  await other.close();
});

test("a team page shows the team's catalog Group: what it owns and its members", async ({ page }) => {
  await signIn(page, user('dana'), '/teams/payments');
  await expect(page.getByTestId('team-owns')).toContainText('component:default/payments-api');
  await expect(page.getByRole('link', { name: 'user:default/lee' })).toBeVisible();
  await page.getByRole('link', { name: "Open the team's catalog Group" }).click();
  await expect(page).toHaveURL(/\/catalog\/group\/default\/payments$/);
});
