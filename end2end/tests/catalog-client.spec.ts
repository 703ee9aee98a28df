// Backstage's own @backstage/catalog-client, unchanged, against Paved's catalog API.
import { expect, test } from './fixtures';
import { CatalogClient } from '@backstage/catalog-client';
import { fileURLToPath } from 'node:url';
import { BASE } from './helpers';

const token = process.env.E2E_ADMIN_TOKEN || 'e2e-admin-token-0123456789abcdef';
const conformance = process.env.CONFORMANCE_DIR
  || fileURLToPath(new URL('../../../shared/conformance/backstage-catalog-examples', import.meta.url));

function client(bearer = token) {
  return new CatalogClient({
    discoveryApi: { getBaseUrl: async () => `${BASE}/api/catalog` },
    fetchApi: { fetch: (input: any, init: any = {}) => fetch(input, { ...init, headers: { ...(init.headers || {}), Authorization: `Bearer ${bearer}` } }) },
  });
}

test('getEntities, getEntityByRef, getEntitiesByRefs and facets', async () => {
  const catalog = client();
  const { items } = await catalog.getEntities({ filter: { kind: 'Component' }, fields: ['metadata.name', 'kind'] });
  const names = items.map((e) => e.metadata.name);
  expect(names).toContain('payments-api');
  expect(Object.keys(items[0])).toEqual(['kind', 'metadata']);

  const entity = await catalog.getEntityByRef('component:default/payments-api');
  expect(entity?.spec?.owner).toBe('payments');
  expect(entity?.relations?.map((r) => `${r.type} ${r.targetRef}`)).toContain('dependsOn resource:default/ledger-db');
  expect(await catalog.getEntityByRef('component:default/does-not-exist')).toBeUndefined();

  const byRefs = await catalog.getEntitiesByRefs({ entityRefs: ['api:default/payments', 'component:default/nope'] });
  expect(byRefs.items[0]?.metadata.name).toBe('payments');
  expect(byRefs.items[1]).toBeUndefined();

  const { facets } = await catalog.getEntityFacets({ facets: ['kind', 'spec.lifecycle'] });
  expect(facets.kind.map((f) => f.value)).toEqual(expect.arrayContaining(['component', 'api', 'group']));
});

test('queryEntities pages with cursors and full-text search', async () => {
  const catalog = client();
  const first = await catalog.queryEntities({ filter: { kind: 'component' }, limit: 1, orderFields: { field: 'metadata.name', order: 'asc' } });
  expect(first.totalItems).toBeGreaterThan(1);
  expect(first.pageInfo.nextCursor).toBeTruthy();
  const second = await catalog.queryEntities({ cursor: first.pageInfo.nextCursor!, limit: 1 });
  expect(second.items[0].metadata.name > first.items[0].metadata.name).toBe(true);
  expect(second.pageInfo.prevCursor).toBeTruthy();

  const found = await catalog.queryEntities({ fullTextFilter: { term: 'acquirer' } });
  expect(found.items.map((e) => e.metadata.name)).toEqual(['payments-api']);
});

test('addLocation dry run, validateEntity and refreshEntity', async () => {
  const catalog = client();
  const dry = await catalog.addLocation({ type: 'file', target: `${conformance}/components/petstore-component.yaml`, dryRun: true });
  expect(dry.entities.map((e) => e.metadata.name)).toEqual(['petstore']);
  expect(await catalog.getEntityByRef('component:default/petstore')).toBeUndefined();

  const invalid = await catalog.validateEntity(
    { apiVersion: 'backstage.io/v1alpha1', kind: 'Component', metadata: { name: 'bad name' }, spec: {} } as any,
    'url:https://example.com/catalog-info.yaml',
  );
  expect(invalid.valid).toBe(false);
  const valid = await catalog.validateEntity(
    { apiVersion: 'backstage.io/v1alpha1', kind: 'System', metadata: { name: 'good' }, spec: { owner: 'payments' } } as any,
    'url:https://example.com/catalog-info.yaml',
  );
  expect(valid.valid).toBe(true);

  await catalog.refreshEntity('component:default/payments-api');
});

test('a bad token is refused', async () => {
  await expect(client('not-a-token').getEntities()).rejects.toThrow(/401/);
});
