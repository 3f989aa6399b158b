/** Request-body JSON schemas of /models, taken from the hand-written openapi/models.json. */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const spec = JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'openapi', 'models.json'), 'utf8')) as {
  components: { schemas: Record<string, object> };
};

export const modelSchemas = spec.components.schemas as Record<'TrainRequest' | 'DeployRequest' | 'PredictRequest' | 'ImportRequest' | 'EmbedRequest', object>;
