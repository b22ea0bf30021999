/**
 * Request validation with TypeBox's compiler instead of Fastify's default ajv, which coerces types ("coerceTypes:
 * 'array'"): there a completion of `true`, `12345` or `["a"]` became the text "true", "12345" or "a", and `null` "".
 * Bodies are JSON and must match their schema exactly; query strings, path parameters and headers are text on the
 * wire, so they get their schema's defaults and are converted ("50" → 50) before the check.
 */
import type { TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { type ValueError, ValueErrorType } from '@sinclair/typebox/errors';
import { Value } from '@sinclair/typebox/value';
import type { FastifySchemaCompiler } from 'fastify';

/** The ajv keyword the error handler reads: `maxLength` (a text too long) answers 413, the rest 400. */
function keyword(e: ValueError): string {
  if (e.type === ValueErrorType.StringMaxLength) return 'maxLength';
  if (e.type === ValueErrorType.ArrayMaxItems) return 'maxItems';
  return ValueErrorType[e.type] ?? 'type';
}

export const strictValidatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const check = TypeCompiler.Compile(schema);
  return (input: unknown) => {
    const value = httpPart === 'body' ? input : Value.Convert(schema, Value.Default(schema, Value.Clone(input)));
    if (check.Check(value)) return { value };
    const first = check.Errors(value).First()!;
    return {
      error: [
        { keyword: keyword(first), instancePath: first.path, message: first.message, params: {}, schemaPath: '#' },
      ],
    };
  };
};
