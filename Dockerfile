# Vigil hub image: the compiled hub (dist/, plain JavaScript) on Node 24 LTS and Debian 13 trixie
# (glibc 2.41). The uWebSockets.js v20.57 build that Node 24 loads needs glibc >= 2.38, so not
# bookworm (2.36) and not Alpine (musl): README.md "Supported platforms".
FROM node:24-trixie-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:24-trixie-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY --from=build /app/dist ./dist
COPY drizzle ./drizzle
COPY public ./public
# DATA_DIR (./data) holds PGlite's files when no DATABASE_URL is set.
RUN mkdir -p data && chown node:node data
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8080
# vigil_build_info{commit}: docker build --build-arg BUILD_COMMIT=$(git rev-parse HEAD) . (empty: no commit label value)
ARG BUILD_COMMIT=
ENV BUILD_COMMIT=$BUILD_COMMIT
EXPOSE 8080
USER node
CMD ["node", "dist/main.js"]
