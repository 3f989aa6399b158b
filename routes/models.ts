import type { FastifyInstance, FastifyRequest } from 'fastify';
import { callerContext } from '../src/rest/context.ts';
import { ApiError } from '../src/errors.ts';
import { callerOf } from './auth.ts';
import { parsePrefer } from '../src/rest/prefer.ts';
import * as ml from '../src/ml/service.ts';
import { cancelJob, enqueueTraining, getJob } from '../src/ml/jobs.ts';
import { modelSchemas } from '../src/ml/api-schemas.ts';
import { evaluateModelById } from '../src/ml/evaluation.ts';
import { binaryFormat } from '../src/ml/binary-rows.ts';

export default async function modelRoutes(app: FastifyInstance): Promise<void> {
  const gw = app.gateway;
  const caller = async (request: FastifyRequest) => {
    const identity = callerOf(request);
    const path = (request.raw.url ?? '').split('?')[0];
    return callerContext({ identity, method: request.method, path, headers: request.headers, schema: gw.config.dbSchemas[0], extraSearchPath: gw.config.dbExtraSearchPath, snapshot: gw.cache.current, requestId: request.id });
  };
  type P = { project: string; id: string };

  app.post('/models/train', { schema: { body: modelSchemas.TrainRequest } }, async (request, reply) => {
    const ctx = await caller(request);
    const body = request.body as ml.TrainRequest;
    if (parsePrefer(request.headers.prefer).respondAsync) {
      const job = await enqueueTraining(gw.ml, ctx, body);
      return reply.code(202).header('Location', `/models/jobs/${job.id}`).header('Preference-Applied', 'respond-async').send({ job_id: job.id, status: job.status, url: `/models/jobs/${job.id}` });
    }
    const controller = new AbortController();
    reply.raw.once('close', () => !reply.raw.writableFinished && controller.abort());
    return ml.train(gw.ml, ctx, body, { signal: controller.signal });
  });
  app.get('/models', async (request) => ml.listProjects(gw.ml, await caller(request)));
  app.get('/models/jobs/:id', async (request) => getJob(gw.ml, await caller(request), (request.params as P).id));
  app.delete('/models/jobs/:id', async (request) => cancelJob(gw.ml, await caller(request), (request.params as P).id));
  app.get('/models/:project', async (request) => ml.describeProject(gw.ml, await caller(request), (request.params as P).project));
  app.delete('/models/:project', async (request, reply) => {
    await ml.deleteProject(gw.ml, await caller(request), (request.params as P).project);
    return reply.code(204).send();
  });
  app.delete('/models/:project/models/:id', async (request, reply) => {
    const { project, id } = request.params as P;
    await ml.deleteModel(gw.ml, await caller(request), project, id);
    return reply.code(204).send();
  });
  app.post('/models/:project/deploy', { schema: { body: modelSchemas.DeployRequest } }, async (request) =>
    ml.deployRequest(gw.ml, await caller(request), (request.params as P).project, request.body as never),
  );
  // JSON bodies are validated; binary ones (src/ml/binary-rows.ts) are sized by the model
  const predictSchema = { body: { content: { 'application/json': { schema: modelSchemas.PredictRequest } } } };
  app.addContentTypeParser('application/x-float64', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
  const predict = async (request: FastifyRequest, withProba: boolean) => {
    const ctx = await caller(request);
    const project = (request.params as P).project;
    const format = binaryFormat(request.headers['content-type']);
    if (format) return ml.predictBinary(gw.ml, ctx, project, request.body as Buffer | undefined, format, withProba);
    return ml.predict(gw.ml, ctx, project, request.body as ml.PredictBody | undefined, withProba);
  };
  app.post('/models/:project/predict', { schema: predictSchema }, (request) => predict(request, false));
  app.post('/models/:project/predict_proba', { schema: predictSchema }, (request) => predict(request, true));
  app.get('/models/:project/models/:id/onnx', async (request, reply) => {
    const { project, id } = request.params as P;
    const bytes = await ml.modelOnnx(gw.ml, await caller(request), project, id);
    return reply.type('application/octet-stream').header('Content-Disposition', `attachment; filename="${project.replace(/[^\w.-]/g, '_')}-${id}.onnx"`).send(Buffer.from(bytes));
  });
  app.get('/models/:project/models/:id/evaluation', async (request) => {
    const { project, id } = request.params as P;
    return evaluateModelById(gw.ml, await caller(request), project, id);
  });
  app.post('/models/:project/import', { schema: { body: modelSchemas.ImportRequest } }, async (request) => {
    const ctx = await caller(request);
    // parsing an untrusted model is the costliest thing a request can ask for: not anonymously
    if (!request.authenticated && !gw.config.importAllowAnonymous) {
      throw new ApiError(401, { code: '42501', message: 'permission denied to import models as the anonymous role', details: 'POST /models/{project}/import needs a token', hint: 'Send a bearer token, or set PGML_IMPORT_ALLOW_ANONYMOUS=true' }, { 'WWW-Authenticate': 'Bearer' });
    }
    return ml.importModel(gw.ml, ctx, (request.params as P).project, request.body as ml.ImportBody);
  });
}
