export default {
  async stats() {
    return repo.run();
  },
};
