// Builds the test app (app/) into dist/: a static page the e2e suite serves on loopback.
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

export default defineConfig({
  root: "app",
  base: "/",
  plugins: [react()],
  logLevel: "warn",
  build: {
    outDir: "../dist",
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 4096,
  },
});
