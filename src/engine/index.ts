export * from './tick-file.js';
export * from './clock.js';
export * from './wall-clock.js';
export * from './agent-id.js';
export * from './phi.js';
export * from './event.js';
